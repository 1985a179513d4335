"""Training: the loop (``trainer``), the EMA generator (``ema``), alarms, speed options and torchrun."""
