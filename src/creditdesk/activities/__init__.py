"""Activities (seed 002, CRM > Activities): work scheduled for a customer, from open to completed."""
