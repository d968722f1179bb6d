"""Products, services, price plans and credit packages (a later issue)."""
