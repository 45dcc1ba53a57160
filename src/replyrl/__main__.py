"""`python -m replyrl ...` (also what `accelerate launch -m replyrl` runs)."""

from replyrl.cli import main

main()
