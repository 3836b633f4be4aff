"""Vestibule's I/O shell: aiohttp app, websocket hub, REST API, stores, bus."""
