"""Names Krita remembers (shortcut settings, docker layout): keep them stable."""

DOCKER_ID = "sketchfill_docker"
TITLE = "SketchFill"
MENU = "tools/scripts"
# (action id, menu text): bind keys or pen buttons to these in Settings > Configure Krita >
# Keyboard Shortcuts (section Scripts).
ACTIONS = (
    ("sketchfill_generate", "SketchFill: Generate"),
    ("sketchfill_variation", "SketchFill: One More Variation"),
    ("sketchfill_before_after", "SketchFill: Before/After"),
    ("sketchfill_create_layers", "SketchFill: Create SketchFill Layers"),
    ("sketchfill_tone", "SketchFill: Auto Tone"),
    ("sketchfill_composite", "SketchFill: Composite Face"),
    ("sketchfill_restore", "SketchFill: Restore Face"),
    ("sketchfill_cancel", "SketchFill: Cancel"),
    ("sketchfill_put_back", "SketchFill: Put Back Latest Result"),
    ("sketchfill_toggle_docker", "SketchFill: Show/Hide Panel"),
)
