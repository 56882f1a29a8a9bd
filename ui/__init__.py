"""The Gradio chat app: wiring only; the logic lives in the rag package."""
