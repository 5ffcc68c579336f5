"""The messages page: an inbox in the browser, served by the connector (Jinja2 + htmx).

``page.py`` builds the router from the services it is given, ``auth.py`` signs the session
cookie and the CSRF tokens, ``templates/`` and ``static/`` (htmx, vendored, and the style
sheet) ship inside the package: no CDN, no build step.
"""
