"""The ``persona-proxy`` command: one module per command group, assembled in
``main``. The top layer: it may import everything, and nothing imports it.
"""
