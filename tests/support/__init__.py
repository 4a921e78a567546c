"""Test helpers shared by every test folder (the reference server runner)."""
