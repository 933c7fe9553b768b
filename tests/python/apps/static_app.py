"""Static directories, files and templates for tests/python/test_static_files.py.

STATIC_ROOT names a directory the test filled (its pub/ is served; secret.txt next to it
must never be); STATIC_TEMPLATES a directory of Jinja templates.
"""

import os

from robyn import Robyn, html, serve_file, serve_html
from robyn.responses import FileResponse
from robyn.templating import JinjaTemplate

root = os.environ["STATIC_ROOT"]
pub = os.path.join(root, "pub")
templates = JinjaTemplate(os.environ["STATIC_TEMPLATES"])

app = Robyn(__file__)
app.serve_directory("/static", pub)
app.serve_directory("/site", pub, index_file="index.html")
app.serve_directory("/list", pub, show_files_listing=True)
app.serve_directory("/", os.path.join(root, "rootsite"), index_file="index.html")


@app.get("/hello")
def hello():
    return "Hello, world!"


# Paths under a plain mount that are not regular files reach the routes.
@app.get("/static/docs")
def static_docs():
    return "python docs"


@app.post("/static/sub")
def static_sub_post():
    return "posted"


@app.get("/static/nothing-here")
def static_missing_file():
    return "python route for a missing file"


# OPTIONS never goes to a mount.
@app.options("/site/preflight")
def site_preflight():
    return "options-under-static"


# A route shadowed by a file of the same path: the file wins, as in Robyn.
@app.get("/static/index.html")
def shadowed():
    return "python should not answer this"


@app.get("/sync/file/download")
def sync_download():
    return serve_file(os.path.join(root, "downloads", "test.txt"))


@app.get("/async/file/download")
async def async_download():
    return serve_file(os.path.join(root, "downloads", "test.txt"))


@app.get("/file/renamed")
def renamed_download():
    return serve_file(os.path.join(root, "downloads", "test.txt"), file_name="report.csv")


@app.get("/file/missing")
def missing_download():
    return serve_file(os.path.join(root, "downloads", "absent.txt"))


@app.get("/file/response")
def file_response():
    return FileResponse(os.path.join(root, "downloads", "test.txt"), status_code=203)


@app.get("/sync/serve/html")
def sync_serve_html():
    return serve_html(os.path.join(pub, "index.html"))


@app.get("/async/serve/html")
async def async_serve_html():
    return serve_html(os.path.join(pub, "index.html"))


@app.get("/inline/html")
def inline_html():
    return html("<p>inline</p>")


@app.get("/sync/template")
def sync_template():
    return templates.render_template("page.html", framework="Robyn", engine="<Jinja2>")


@app.get("/async/template")
async def async_template():
    return templates.render_template(template_name="page.html", framework="Robyn", engine="Jinja2")


@app.get("/template/missing")
def missing_template():
    return templates.render_template("absent.html")


app.start()
