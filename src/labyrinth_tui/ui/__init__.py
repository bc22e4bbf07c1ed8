"""The Textual UI: screens and widgets. Imports sources and model only."""
