"""The lab engine: lab format, release of learner notebooks, headless runs, grading and reports."""
