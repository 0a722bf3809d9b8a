"""Serving: the model server (``server``), its ASGI hot path (``hotpath``), the loaded model
(``model``), the request payload formats (``payloads``) and injectable faults (``faults``); the client of the
model server and the router (``client``) and the paths both sides name (``paths``)."""
