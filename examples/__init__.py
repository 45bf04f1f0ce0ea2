"""Example applications for sealed-sessions; ``python -m examples.demo`` starts the demo."""
