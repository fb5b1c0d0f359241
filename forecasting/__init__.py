"""Forecasting: trends, time to threshold, upstream routing (see the forecasting issue)."""
