"""Penjangkauan (outreach): finding people who use drugs, screening them and enrolling them."""
