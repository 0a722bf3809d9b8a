"""Serving: the model server (``server``), its ASGI hot path (``hotpath``), the loaded model
(``model``), the request payload formats (``payloads``) and injectable faults (``faults``)."""
