"""``python -m clients.demo_rp``: serve the demo relying party on its base URL's host and port."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from clients.demo_rp.app import create_app


def main() -> None:
    # The development server's access log would print the authorization code of /callback: keep it quiet.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = create_app()
    parts = urlsplit(app.config["DEMO_RP_BASE_URL"])
    app.run(host=parts.hostname or "127.0.0.1", port=parts.port or 5001, debug=False, use_reloader=False,
            threaded=True)


if __name__ == "__main__":
    main()
