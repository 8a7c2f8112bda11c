"""The persona workshop: dataset checks and their report, token counts, the
fine-tuning API client, and few-shot exchanges taken from a training set.

Pure functions and an HTTP client for the provider's files and jobs; may
import ``app.config`` only. The proxy uses ``tokens`` and ``fewshot`` from here.
"""
