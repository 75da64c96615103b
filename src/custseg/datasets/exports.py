ExportFiles = read_manifest = write_exports = None
