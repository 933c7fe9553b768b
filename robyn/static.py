# TEST OVERLAY ONLY: stands in for static's robyn/static.py.
def serve_directory(app, route, directory_path, index_file=None, show_files_listing=False):
    pass
