"""The `custseg` command line: thin over the library, renders with rich."""
