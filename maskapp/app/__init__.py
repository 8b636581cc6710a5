"""The Streamlit app's library side: page helpers, the live worker, plots, samples.
ui.py is the Streamlit glue."""
