"""`make generate`: run every generator (`python -m generate [--check]`)."""
import sys

from generate import generators

sys.exit(max([generator.main(sys.argv[1:]) for generator in generators()]))
