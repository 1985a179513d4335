"""The benchmarks are one tool: every one is listed, takes the shared options and explains itself."""

import pytest

from benchmarks.__main__ import BENCHMARKS, main


def test_the_tool_lists_every_benchmark(capsys):
    assert main([]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in BENCHMARKS)
    assert main(["nope"]) == 2


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_every_benchmark_has_help_and_the_shared_options(name, capsys):
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert f"python -m benchmarks {name}" in text and "--threads" in text and "--device" in text


def test_a_missing_data_dir_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["data", "--data-dir", str(tmp_path / "nowhere")])
    assert done.value.code == 2 and f"--data-dir: {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err
