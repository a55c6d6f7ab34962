"""Evaluation: metrics, significance, evaluation runs, figures, datasets, the SMART importer and learn-mix."""
