# TEST OVERLAY ONLY (not in the repository): stands in for forms' robyn/openapi.py.
class OpenAPI:
    pass
def install(app):
    pass
