"""Measuring a route's targets: held-out prompts from the training set, sent to
every target through the proxy's own request planning, scored for persona
fidelity (``app.tuning.fidelity``).

Above the proxy: it may import config, tuning, ops and proxy; only the CLI imports it.
"""
