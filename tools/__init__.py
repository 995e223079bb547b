"""Offline tools: fitting the hardware models' constants to published measurements, checking the accuracy proxy
against held-out rows, regenerating data tables. Used by benchmarks/ and tests, never by the runtime packages
(simulator, hardware_models), so they are not installed with them; run from the repository root."""
