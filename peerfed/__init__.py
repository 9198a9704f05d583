"""peerfed (spec §1): people supporting each other across community nodes that cannot read them."""

__all__ = ["__version__"]

__version__ = "0.1.0"
