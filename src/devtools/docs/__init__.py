"""Generators for the parts of the documentation that other files own the truth of: the
configuration table (from `Settings`) and the chart's values table (from values.yaml and its
schema). Each writes between two markers of a Markdown page; tests check the page is current."""
