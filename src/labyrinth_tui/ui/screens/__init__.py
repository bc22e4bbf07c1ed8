"""Screens: main (tree + streams), help."""
