"""The report builder: Markdown reports from pytest-benchmark JSON and pytest junit XML.

    python -m reports RUN.json [MORE.json ...] [--verify RESULTS.xml] -o reports/NAME.md

Modules: load (read + validate runs), tables (pandas: ratios, ceilings, comparisons), plots (scaling
PNGs), verify_summary (junit XML), markdown (escaping, tables, atomic write), build (the document).
"""
