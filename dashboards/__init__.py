"""The Dash dashboard over the warehouse's shared queries."""
