"""SMS credits for individual users (seed 003): purchases with receipts, transfers, sending, logs."""
