"""Candles and what is read off them: load, validate, resample, store, synthesise, features."""
