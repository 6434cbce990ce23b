"""The chromadb store of device manuals, its embedding functions and the shipped sample pools."""
