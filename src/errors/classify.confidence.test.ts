import { describe, expect, it } from 'vitest';
import { classify } from './classify.js';
import { compileRules } from './rules.js';

const text = (message: string, extra: { where?: string; httpStatus?: number } = {}) => classify({ kind: 'text', message, ...extra }, { render: false });

describe('Classification.confidence', () => {
  it('is high for a specific signal and low when nothing specific matched', () => {
    expect(text('torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB')).toMatchObject({ code: 'COMFYUI_OOM', confidence: 'high' });
    expect(text('the thing did not work')).toMatchObject({ code: 'COMFYUI_GENERATION_ERROR', rule: 'fallback.any', confidence: 'low' });
    const validation = classify({
      kind: 'validation',
      body: { error: { type: 'prompt_outputs_failed_validation', message: 'x' }, node_errors: { '5': { class_type: 'EmptyLatentImage', errors: [{ type: 'value_smaller_than_min', message: 'Value 8 smaller than min of 16', details: 'width', extra_info: { input_name: 'width' } }] } } },
    });
    expect(validation).toMatchObject({ code: 'COMFYUI_INVALID_PARAMETERS', confidence: 'high' });
  });

  it('is low for signals shared with other causes', () => {
    expect(text('Request failed', { where: 'http_response', httpStatus: 400 })).toMatchObject({ code: 'COMFYUI_INVALID_PARAMETERS', rule: 'http.client-error', confidence: 'low' });
    expect(text('Found', { where: 'http_response', httpStatus: 302 })).toMatchObject({ code: 'COMFYUI_AUTH_ERROR', rule: 'http.redirect', confidence: 'low' });
    expect(text('Gemini API error: 400 Bad Request: the request is invalid')).toMatchObject({ code: 'COMFYUI_INVALID_PARAMETERS', rule: 'invalid.provider-400', confidence: 'low' });
    expect(text("Error occurred when executing FaceDetailer: 'SAMWrapper' object has no attribute 'foo'")).toMatchObject({ code: 'COMFYUI_DEPENDENCY_ERROR', confidence: 'low' });
  });

  it('keeps provider moderation specific and sends a rejected API key to auth', () => {
    expect(text('BFL API Message: Request Moderated')).toMatchObject({ code: 'COMFYUI_INVALID_PARAMETERS', confidence: 'high' });
    expect(text('API Error: 400 POST https://generativelanguage.googleapis.com/v1beta/models/x: API key not valid. Please pass a valid API key.')).toMatchObject({ code: 'COMFYUI_AUTH_ERROR' });
  });

  it('can be set by a configuration rule', () => {
    const rules = compileRules([{ id: 'acme.maybe', code: 'COMFYUI_WORKFLOW_ERROR', confidence: 'low', when: { message: ['acme says no'] } }]);
    expect(classify({ kind: 'text', message: 'acme says no' }, { rules })).toMatchObject({ code: 'COMFYUI_WORKFLOW_ERROR', rule: 'acme.maybe', confidence: 'low' });
    expect(() => compileRules([{ id: 'bad', code: 'COMFYUI_OOM', confidence: 'medium', when: {} }])).toThrow(/confidence/);
  });
});

describe('rules added for issue 18 (from the seen corpus part)', () => {
  it('does not read FileNotFoundError as the ENOTFOUND network error', () => {
    expect(text("FileNotFoundError: [Errno 2] No such file or directory: 'C:\\\\cfg\\\\extra_models_config.yaml'").code).not.toBe('COMFYUI_CONNECTION_ERROR');
    expect(text('getaddrinfo ENOTFOUND comfy.example.com').code).toBe('COMFYUI_CONNECTION_ERROR');
  });

  it('recognises environment failures by library, kernel and status names', () => {
    for (const m of [
      "Cannot convert a MPS Tensor to float64 dtype as the MPS framework doesn't support float64. Please use float32 instead.",
      'Trying to convert Float8_e4m3fn to the MPS backend but it does not have support for that dtype.',
      'KSampler miopenStatusNotInitialized',
      'onnxruntime::python::CreateExecutionProviderInstance CUDA_PATH is set but CUDA wasnt able to be loaded.',
      'File "/app/ComfyUI/comfy_extras/nodes_audio.py", line 1, in <module>\n    import torchaudio',
      'torchaudio missing, ACE model will be broken',
      "Unexpected architecture type in GGUF file, expected one of flux, sd1, sdxl, t5encoder but got 'wan'",
    ]) expect(text(m).code, m).toBe('COMFYUI_DEPENDENCY_ERROR');
    expect(text('KSampler miopenStatusInternalError').code).toBe('COMFYUI_GPU_FAULT');
  });

  it('recognises client-side transport, process exits, stalls and interrupts in words', () => {
    expect(text('TypeError: Failed to fetch', { where: 'client_side' }).code).toBe('COMFYUI_CONNECTION_ERROR');
    expect(text('net::ERR_CONNECTION_REFUSED', { where: 'client_side' }).code).toBe('COMFYUI_CONNECTION_ERROR');
    expect(text('This site can’t be reached: ERR_CONNECTION_TIMED_OUT', { where: 'client_side' }).code).toBe('COMFYUI_TIMEOUT');
    expect(text('[error] Python process exited with code 1 and signal null').code).toBe('COMFYUI_CONNECTION_ERROR');
    expect(text('progress bar just stopped at 0%').code).toBe('COMFYUI_STALLED');
    expect(text('Interrupting prompt 6724683e-910c-4b5e-9116-d502fbdca4fc').code).toBe('COMFYUI_INTERRUPTED');
  });

  it('keeps a failed read under output/ by a loader out of the output-save rule', () => {
    const read = "- **Node Type:** Load Text File\n- **Exception Type:** PermissionError\n- **Exception Message:** [Errno 13] Permission denied: 'D:\\\\ComfyUI\\\\output\\\\2024-09-11'";
    expect(text(read, { where: 'execution_error' }).code).toBe('COMFYUI_DEPENDENCY_ERROR');
  });

  it('answers SERVER_ERROR for another exception in the /prompt handler, MISSING_NODE for a class-map KeyError', () => {
    expect(text('File "E:\\\\ComfyUI\\\\server.py", line 331, in post_prompt\nUnboundLocalError: local variable \'node_id\' referenced before assignment').code).toBe('COMFYUI_SERVER_ERROR');
    expect(text("File \"/src/ComfyUI/execution.py\", line 620, in validate_prompt\nclass_ = nodes.NODE_CLASS_MAPPINGS[prompt[x]['class_type']]\nKeyError: 'EmbeddingPicker'").code).toBe('COMFYUI_MISSING_NODE');
  });
});
