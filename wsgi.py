"""WSGI entry point: ``flask --app wsgi serve`` (Granian, idp/serving.py), ``flask --app wsgi`` commands."""
from idp import create_app

app = create_app()
