package record

// RecordingMetadata is recordingMetadata, for the external tests.
var RecordingMetadata = recordingMetadata
