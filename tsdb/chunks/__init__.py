"""Sample encodings shared by the head and blocks."""
