"""Rendering: declarative products drawn fast, the static map built once per worker."""
