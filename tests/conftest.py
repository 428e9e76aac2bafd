import sys
from pathlib import Path

# Test modules share small fixtures (e.g. test_data.write): make them importable.
sys.path.insert(0, str(Path(__file__).parent))
