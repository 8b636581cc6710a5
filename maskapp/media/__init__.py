"""Reading media safely: image files and uploads, video files, cameras and streams."""
