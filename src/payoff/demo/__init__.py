"""The shipped demo study."""
