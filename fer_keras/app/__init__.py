"""The application layer: face detection, crops, tracking, the public ``EmotionRecognizer`` and the live app."""
