"""Measuring the pipeline: VOC annotations, detection AP, speed, and their reports."""
