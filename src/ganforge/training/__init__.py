"""Training: the loop (``trainer``), checkpoints (``checkpoint``) and the EMA generator (``ema``)."""
