"""The Streamlit app's modules: one per tab (``*_tab.py``, each with ``TITLE`` and ``render(app)``), the sidebar,
and the shared parts (``common``: constants and helpers; ``models``: loading; ``runs``: one generated batch).

``apps/protein_app.py`` only wires them; a new tab is one module plus one entry in its ``TABS``.
"""
