"""ganforge's benchmarks, one tool: ``python -m benchmarks NAME [options]`` (README.md lists them)."""
