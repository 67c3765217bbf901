/**
 * One table per code, with evidence phrased differently from the public corpus (other versions,
 * other libraries, other clients): the rules must generalise, not remember the corpus.
 */
import { describe, expect, it } from 'vitest';
import { classify } from './classify.js';
import type { ErrorCode } from './codes.js';
import type { Evidence } from './evidence.js';

type Case = [name: string, evidence: Evidence | unknown];

const text = (message: string, where?: string, exceptionType?: string, httpStatus?: number): Evidence => ({
  kind: 'text',
  message,
  ...(where ? { where } : {}),
  ...(exceptionType ? { exceptionType } : {}),
  ...(httpStatus !== undefined ? { httpStatus } : {}),
});
const execErr = (exception_type: string, exception_message: string, node_type = 'KSampler', node_id = '3'): Evidence => ({
  kind: 'execution_error',
  data: { prompt_id: 'p', node_id, node_type, executed: [], exception_type, exception_message: `${exception_message}\n`, traceback: [], current_inputs: {}, current_outputs: [] },
});
const validation = (error: Record<string, unknown>, nodeErrors: Record<string, unknown> = {}): Evidence => ({
  kind: 'validation',
  body: { error: { details: '', extra_info: {}, ...error }, node_errors: nodeErrors },
});
const nodeError = (class_type: string, type: string, message: string, details: string, extra: Record<string, unknown> = {}) => ({
  class_type,
  dependent_outputs: ['9'],
  errors: [{ type, message, details, extra_info: extra }],
});

const CASES: Record<ErrorCode, Case[]> = {
  COMFYUI_CONNECTION_ERROR: [
    ['undici ECONNRESET', { kind: 'transport', code: 'ECONNRESET', message: 'read ECONNRESET' }],
    ['fetch failed caused by ECONNREFUSED', { kind: 'thrown', error: new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:8188'), { code: 'ECONNREFUSED' }) }) }],
    ['Node socket hang up', text('Error: socket hang up\n    at connResetException (node:internal/errors:720:14)', 'client_side')],
    ['python requests refused', text("requests.exceptions.ConnectionError: HTTPConnectionPool(host='127.0.0.1', port=8188): Max retries exceeded with url: /prompt (Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f>: Failed to establish a new connection: [Errno 111] Connection refused'))", 'python_exception')],
    ['DNS failure', text('getaddrinfo ENOTFOUND comfyui-worker-3.internal', 'client_side')],
    ['container killed', text('comfyui-1 exited with code 137', 'log')],
    ['native crash', text('Fatal Python error: Segmentation fault\n\nCurrent thread 0x00007f3a (most recent call first):\n  File "comfy/ops.py", line 55 in forward', 'log')],
    ['websockets library close', text('websockets.exceptions.ConnectionClosedError: no close frame received or sent', 'client_side')],
    ['aiohttp disconnect', text('aiohttp.client_exceptions.ServerDisconnectedError: Server disconnected', 'client_side')],
    ['WebSocket 1006', { kind: 'ws_close', code: 1006, reason: '' }],
    ['WebSocket going away', { kind: 'ws_close', code: 1001, reason: 'server shutting down' }],
    ['TLS certificate', { kind: 'transport', code: 'CERT_HAS_EXPIRED', message: 'certificate has expired' }],
    ['bare Killed line from the shell', text('Loading 1 new model\nKilled', 'log')],
    ['WebSocket connect failed', text('WebSocket connection to ws://127.0.0.1:8188/ws?clientId=abc failed', 'client_side')],
    ['Windows reset', text('ConnectionResetError: [WinError 10054] An existing connection was forcibly closed by the remote host', 'client_side')],
    ['websocket-client lost', text('websocket._exceptions.WebSocketConnectionClosedException: Connection to remote host was lost.', 'client_side')],
  ],
  COMFYUI_TIMEOUT: [
    ['AbortSignal.timeout', { kind: 'thrown', error: new DOMException('The operation was aborted due to timeout', 'TimeoutError') }],
    ['requests read timeout', text("requests.exceptions.ReadTimeout: HTTPConnectionPool(host='localhost', port=8188): Read timed out. (read timeout=600)", 'client_side')],
    ['polling budget', text('Timed out waiting for prompt 5f2c to finish after 900s', 'client_side')],
    ['our generation timeout', { kind: 'timeout', phase: 'generation', ms: 600_000 }],
    ['our queue-wait timeout', { kind: 'timeout', phase: 'queue', ms: 60_000 }],
    ['undici body timeout', { kind: 'transport', code: 'UND_ERR_BODY_TIMEOUT', message: 'Body Timeout Error' }],
    ['HTTP 408', { kind: 'http', status: 408, bodyText: 'Request Timeout' }],
    ['httpx read timeout', text('httpx.ReadTimeout: timed out', 'client_side')],
    ['no answer within a bound', text('ComfyUI did not respond within 30 seconds', 'client_side')],
  ],
  COMFYUI_SERVER_ERROR: [
    ['proxy 502 page', { kind: 'http', status: 502, bodyText: '<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>' }],
    ['axios 503 text', text('AxiosError: Request failed with status code 503', 'client_side')],
    ['Cloudflare 524', text('Error 524: A timeout occurred (cloudflare)', 'client_side')],
    ['aiohttp text 500', { kind: 'http', status: 500, method: 'POST', path: '/prompt', bodyText: '500 Internal Server Error\n\nServer got itself in trouble' }],
    ['WebSocket 1011', { kind: 'ws_close', code: 1011, reason: 'internal error' }],
    ['2xx with a body that is not the protocol', { kind: 'http', status: 200, bodyText: '<!doctype html><title>Login</title>' }],
  ],
  COMFYUI_OVERLOADED: [
    ['429 with Retry-After', { kind: 'http', status: 429, headers: { 'Retry-After': '30' }, bodyText: 'slow down' }],
    ['OpenAI rate limit in a node', execErr('openai.RateLimitError', "Error code: 429 - {'error': {'message': 'Rate limit reached for requests'}}", 'OpenAIChat')],
    ['Google quota in a node', text('google.api_core.exceptions.ResourceExhausted: 429 Resource has been exhausted (e.g. check quota).', 'execution_error')],
    ['overloaded server', text('The server is currently overloaded, please try again later.', 'client_side')],
    ['503 with a full queue', { kind: 'http', status: 503, body: { error: 'queue is full, try again later' } }],
    ['WebSocket 1013', { kind: 'ws_close', code: 1013, reason: 'try again later' }],
  ],
  COMFYUI_STALLED: [
    ['our stall watchdog', { kind: 'timeout', phase: 'stall', ms: 300_000, detail: 'no progress while running' }],
    ['a client watchdog', text('Watchdog: prompt 1234 made no progress for 600s; interrupting', 'client_side')],
    ['a stuck queue', text('Job appears to be stuck: queue_remaining=3 has not moved in 10 minutes', 'client_side')],
    ['never started', text('prompt accepted but never started (execution_start not received within 120000 ms)', 'client_side')],
    ['waited for the start', text('Job timed out waiting for execution to start', 'client_side')],
  ],
  COMFYUI_INTERRUPTED: [
    ['interrupted by someone else', { kind: 'interrupted', data: { prompt_id: 'p', node_id: '12', node_type: 'ImageBlur' }, byOwner: false }],
    ['server log', text('comfyui  | Processing interrupted\ncomfyui  | Prompt executed in 3.21 seconds', 'log')],
    ['interrupt exception type', execErr('comfy.model_management.InterruptProcessingException', '')],
    ['cancelled by a user', text('Execution was cancelled by the user.', 'client_side')],
  ],
  COMFYUI_OOM: [
    ['CUDA OOM', execErr('torch.OutOfMemoryError', 'CUDA out of memory. Tried to allocate 2.50 GiB. GPU 0 has a total capacity of 23.64 GiB of which 1.10 GiB is free.')],
    ['XPU OOM', text('RuntimeError: XPU out of memory. Tried to allocate 1.00 GiB (GPU 0; 15.9 GiB total capacity)', 'python_exception')],
    ['numpy host RAM', text('numpy.core._exceptions._ArrayMemoryError: Unable to allocate 12.0 GiB for an array with shape (3, 4096, 4096, 64) and data type float32', 'log')],
    ['cuBLAS alloc', execErr('RuntimeError', 'CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`')],
    ['HIP runtime OOM', execErr('RuntimeError', 'HIP error: out of memory\nHIP kernel errors might be asynchronously reported at some other API call')],
    ['Python MemoryError', execErr('MemoryError', '')],
  ],
  COMFYUI_MODEL_MISSING: [
    [
      'checkpoint not in list',
      validation(
        { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation' },
        { '4': nodeError('CheckpointLoaderSimple', 'value_not_in_list', 'Value not in list', "ckpt_name: 'juggernautXL_v9.safetensors' not in ['sd_xl_base_1.0.safetensors']", { input_name: 'ckpt_name', received_value: 'juggernautXL_v9.safetensors' }) },
      ),
    ],
    ['lora file missing at run time', text("FileNotFoundError: [Errno 2] No such file or directory: '/opt/ComfyUI/models/loras/detail_tweaker.safetensors'", 'python_exception')],
    ['corrupt safetensors', execErr('safetensors_rust.SafetensorError', 'Error while deserializing header: InvalidHeaderDeserialization', 'VAELoader')],
    ['corrupt pickle checkpoint', text('RuntimeError: PytorchStreamReader failed reading zip archive: failed finding central directory', 'log')],
    ['HTML saved as a model', execErr('_pickle.UnpicklingError', "invalid load key, '<'.", 'UpscaleModelLoader')],
    ['hub offline and not cached', text('huggingface_hub.errors.LocalEntryNotFoundError: Cannot find an appropriate cached snapshot folder for the specified revision on the local disk and outgoing traffic has been disabled.', 'execution_error')],
    ['unet not in list (log)', text("Failed to validate prompt for output 9:\n* UNETLoader 12:\n  - Value not in list: unet_name: 'flux1-dev.sft' not in []\nOutput will be ignored", 'log')],
    ['text encoder not in list', text("- Value not in list: clip_name1: 't5xxl_fp16.safetensors' not in ['clip_l.safetensors']", 'http_response')],
    ['a loader says its model is missing', text('Error occurred when executing IPAdapterUnifiedLoader:\n\nClipVision model not found.', 'execution_error')],
    ['onnx model file missing', text("!!! Exception during processing !!! [Errno 2] No such file or directory: '/ComfyUI/models/insightface/inswapper_128.onnx'", 'log')],
  ],
  COMFYUI_MISSING_NODE: [
    ['unknown class_type', validation({ type: 'invalid_prompt', message: 'Cannot execute because node ReActorFaceSwap does not exist.', details: "Node ID '#14'" })],
    ['post-2026 missing_node_type', validation({ type: 'missing_node_type', message: "Node 'KSamplerAdvancedX' not found. The custom node may not be installed.", details: "Node ID '#3'", extra_info: { node_id: '3', class_type: 'KSamplerAdvancedX' } })],
    ['frontend dialog', text('Missing Node Types: When loading the graph, the following node types were not found:\nIPAdapterApply\nPrepImageForClipVision', 'client_side')],
    ['unknown node type', text('Unknown node type: WAS_Image_Blend', 'client_side')],
    ['node type not found', text('Node type not found: SUPIR_Upscale', 'client_side')],
    ['custom nodes not installed', text("This workflow uses custom nodes you haven't installed yet.", 'client_side')],
  ],
  COMFYUI_DEPENDENCY_ERROR: [
    ['missing module', execErr('ModuleNotFoundError', "No module named 'insightface'", 'ReActorFaceSwap')],
    ['DLL load failed', text('ImportError: DLL load failed while importing onnxruntime_pybind11_state: The specified module could not be found.', 'log')],
    ['no kernel image', execErr('RuntimeError', 'CUDA error: no kernel image is available for execution on the device\nCUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.')],
    ['GPU too new for torch', text('NVIDIA GeForce RTX 5090 with CUDA capability sm_120 is not compatible with the current PyTorch installation.', 'log')],
    ['numpy API removed', execErr('AttributeError', "module 'numpy' has no attribute 'float'", 'FaceDetailer')],
    ['inductor failed', text("torch._dynamo.exc.BackendCompilerFailed: backend='inductor' raised:\nCompilationError: at 1:0", 'execution_error')],
    ['shared library missing', text('OSError: libcudart.so.12: cannot open shared object file: No such file or directory', 'log')],
    ['node and core version skew', execErr('TypeError', "sample() got an unexpected keyword argument 'denoise_mask'", 'KSamplerAdvanced')],
    ['torch DLL missing', text("FileNotFoundError: Could not find module 'C:\\ComfyUI\\python_embeded\\Lib\\site-packages\\torch\\lib\\c10.dll' (or one of its dependencies).", 'log')],
    ['operator missing on Apple MPS', execErr('NotImplementedError', "The operator 'aten::upsample_bicubic2d.out' is not currently implemented for the MPS device.", 'ImageScale')],
  ],
  COMFYUI_GPU_FAULT: [
    ['launch failure', execErr('RuntimeError', 'CUDA error: unspecified launch failure')],
    ['misaligned address', execErr('torch.AcceleratorError', 'CUDA error: misaligned address')],
    ['illegal address', text('RuntimeError: CUDA error: an illegal memory access was encountered\nCompile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.', 'python_exception')],
    ['cuDNN internal', execErr('RuntimeError', 'cuDNN error: CUDNN_STATUS_INTERNAL_ERROR', 'VAEDecode')],
    ['worker thread died', text('Exception in thread Thread-2 (prompt_worker):\nTraceback (most recent call last):\n  File "main.py", line 180, in prompt_worker\nRuntimeError: boom', 'log')],
    ['watchdog timeout on the GPU', execErr('RuntimeError', 'CUDA error: the launch timed out and was terminated')],
  ],
  COMFYUI_GENERATION_ERROR: [
    ['index error in a node', execErr('IndexError', 'index 3 is out of bounds for dimension 3 with size 3', 'ImageToMask')],
    ['unpack error', execErr('ValueError', 'too many values to unpack (expected 2)', 'ControlNetApplyAdvanced')],
    ['third-party API unreachable from a node', execErr('requests.exceptions.ConnectionError', "HTTPSConnectionPool(host='api.replicate.com', port=443): Max retries exceeded with url: /v1/predictions", 'ReplicateNode')],
    ['hub 503 during a download in a node', text('!!! Exception during processing !!! 503 Server Error: Service Unavailable for url: https://huggingface.co/api/models/org/model', 'log')],
    ['None in a node', execErr('AttributeError', "'NoneType' object has no attribute 'shape'", 'ImageScale')],
    ['device mismatch', execErr('RuntimeError', 'Expected all tensors to be on the same device, but found at least two devices, cuda:1 and cuda:0!')],
  ],
  COMFYUI_OUTPUT_ERROR: [
    ['run finished without outputs', { kind: 'history', entry: { prompt: [1, 'p', {}, {}, ['9']], outputs: {}, status: { status_str: 'success', completed: true, messages: [['execution_start', {}], ['execution_success', {}]] } } }],
    ['output not writable', text("PermissionError: [Errno 13] Permission denied: '/app/ComfyUI/output/ComfyUI_00001_.png'", 'execution_error')],
    ['ffmpeg pipe broke in a video node', execErr('BrokenPipeError', '[Errno 32] Broken pipe', 'VHS_VideoCombine')],
    ['output file gone', { kind: 'http', status: 404, method: 'GET', path: '/view' }],
    ['nothing returned', text('No images were returned by the workflow', 'client_side')],
    ['saving failed in words', execErr('Exception', 'Failed to save image to disk', 'SaveImageExtended')],
  ],
  COMFYUI_INVALID_PARAMETERS: [
    [
      'several bad inputs',
      validation(
        { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation' },
        {
          '5': nodeError('EmptyLatentImage', 'value_smaller_than_min', 'Value 8 smaller than min of 16', 'width', { input_name: 'width', received_value: 8 }),
          '3': nodeError('KSampler', 'invalid_input_type', 'Failed to convert an input value to a INT value', 'seed, abc, invalid literal', { input_name: 'seed', received_value: 'abc' }),
        },
      ),
    ],
    ['body too large', { kind: 'http', status: 413, bodyText: 'Maximum request body size 104857600 exceeded, actual body size 104923136' }],
    ['provider safety system', execErr('openai.BadRequestError', "Error code: 400 - {'error': {'message': 'Your request was rejected as a result of our safety system.'}}", 'DalleNode')],
    [
      'combo value that is not a model',
      validation(
        { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation' },
        { '3': nodeError('KSampler', 'value_not_in_list', 'Value not in list', "sampler_name: 'euler_ancestral_cfg' not in ['euler', 'euler_ancestral']", { input_name: 'sampler_name', received_value: 'euler_ancestral_cfg' }) },
      ),
    ],
    [
      'required input missing',
      validation({ type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation' }, { '8': nodeError('VAEDecode', 'required_input_missing', 'Required input is missing', 'vae', { input_name: 'vae' }) }),
    ],
  ],
  COMFYUI_WORKFLOW_ERROR: [
    ['no output node', validation({ type: 'prompt_no_outputs', message: 'Prompt has no outputs' })],
    [
      'type mismatch',
      validation(
        { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation' },
        { '9': nodeError('SaveImage', 'return_type_mismatch', 'Return type mismatch between linked nodes', 'images, received_type(LATENT) mismatch input_type(IMAGE)', { input_name: 'images' }) },
      ),
    ],
    ['SD1.5 conditioning into SDXL', execErr('RuntimeError', 'mat1 and mat2 shapes cannot be multiplied (1x768 and 1280x320)')],
    ['dependency cycle', execErr('graph.DependencyCycleError', 'Dependency cycle detected', 'Reroute')],
    ['wrong ControlNet architecture', text('RuntimeError: Error(s) in loading state_dict for ControlNet:\n\tsize mismatch for input_blocks.1.0.weight', 'python_exception')],
    ['legacy no-prompt body', { kind: 'validation', body: { error: 'no prompt', node_errors: [] } }],
    ['latent of the wrong size', execErr('RuntimeError', "shape '[1, 4, 64, 64]' is invalid for input of size 16384")],
    ['UI-format workflow sent', text('Invalid workflow: expected API format JSON', 'client_side')],
    ['node without class_type', validation({ type: 'invalid_prompt', message: 'Cannot execute because a node is missing the class_type property.', details: "Node ID '#last_link_id'" })],
  ],
  COMFYUI_AUTH_ERROR: [
    ['401 from a proxy', { kind: 'http', status: 401, bodyText: 'Unauthorized' }],
    ['WebSocket policy close', { kind: 'ws_close', code: 1008, reason: 'forbidden' }],
    ['bad key in a node', execErr('openai.AuthenticationError', "Error code: 401 - {'error': {'message': 'Incorrect API key provided'}}", 'OpenAIChat')],
    ['origin check', text('WARNING: request with non matching host and origin 127.0.0.1:8188 != localhost:3000, returning 403', 'log')],
    ['out of credits', execErr('Exception', 'Your credit balance is too low to access the API.', 'ClaudeNode')],
    ['gated model repo', text('huggingface_hub.errors.GatedRepoError: 401 Client Error. Cannot access gated repo for url https://huggingface.co/black-forest-labs/FLUX.1-dev/resolve/main/ae.safetensors', 'execution_error')],
  ],
  COMFYUI_DISK_FULL: [
    ['cache volume full', execErr('OSError', "[Errno 28] No space left on device: '/root/.cache/huggingface'", 'DownloadAndLoadFlorence2Model')],
    ['Node ENOSPC', text('Error: ENOSPC: no space left on device, write', 'client_side')],
    ['Windows disk full', text('OSError: [WinError 112] There is not enough space on the disk', 'python_exception')],
    ['ffmpeg disk full', text('[out#0/mp4 @ 0x55d] Error writing trailer: No space left on device', 'log')],
  ],
  INTERNAL_ERROR: [
    ['a bug of ours', { kind: 'thrown', error: new TypeError("Cannot read properties of undefined (reading 'timeout')") }],
    ['a range error', { kind: 'thrown', error: new RangeError('Invalid array length') }],
    ['a thrown non-error', { kind: 'thrown', error: { weird: true } }],
    ['no evidence at all', null],
  ],
};

describe('classify: every code, phrased differently from the corpus', () => {
  for (const [code, cases] of Object.entries(CASES)) {
    describe(code, () => {
      it.each(cases)('%s', (_name, evidence) => {
        const c = classify(evidence);
        expect(c.code, `rule ${c.rule}`).toBe(code);
      });
    });
  }
});

describe('classify: details a decision needs', () => {
  it('names the model, its folder, node and input for a loader value not in the list', () => {
    const c = classify(CASES.COMFYUI_MODEL_MISSING[0]![1]);
    expect(c.missingModels).toEqual([{ name: 'juggernautXL_v9.safetensors', folder: 'checkpoints', nodeId: '4', input: 'ckpt_name' }]);
    expect(c.hint).toMatch(/juggernautXL_v9\.safetensors/);
  });

  it('names the missing node types (old and new error shapes)', () => {
    expect(classify(CASES.COMFYUI_MISSING_NODE[0]![1])).toMatchObject({ missingNodeTypes: ['ReActorFaceSwap'], nodeId: '14' });
    expect(classify(CASES.COMFYUI_MISSING_NODE[1]![1])).toMatchObject({ missingNodeTypes: ['KSamplerAdvancedX'], nodeId: '3' });
    expect(classify(CASES.COMFYUI_MISSING_NODE[2]![1]).missingNodeTypes).toEqual(['IPAdapterApply', 'PrepImageForClipVision']);
  });

  it('reports every bad node of a validation body, and names them in the message', () => {
    const c = classify(CASES.COMFYUI_INVALID_PARAMETERS[0]![1]);
    // Integer-like node ids come out in numeric order (JavaScript object key order).
    expect(c.nodeErrors?.map((e) => [e.nodeId, e.classType, e.input, e.type])).toEqual([
      ['3', 'KSampler', 'seed', 'invalid_input_type'],
      ['5', 'EmptyLatentImage', 'width', 'value_smaller_than_min'],
    ]);
    expect(c.message).toMatch(/node 5 \(EmptyLatentImage\) input width/);
    expect(c.message).toMatch(/node 3 \(KSampler\) input seed/);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(classify({ kind: 'http', status: 429, headers: { 'retry-after': '30' } }).retryAfterMs).toBe(30_000);
    const now = Date.UTC(2026, 0, 1, 12, 0, 0);
    const clock = { now: () => now, setTimeout: () => 0 as never, clearTimeout: () => undefined };
    const c = classify({ kind: 'http', status: 503, headers: { 'Retry-After': new Date(now + 90_000).toUTCString() }, bodyText: 'Service Unavailable' }, { clock });
    expect(c).toMatchObject({ code: 'COMFYUI_SERVER_ERROR', retryAfterMs: 90_000 });
    expect(classify(text('429 Too Many Requests. Please try again in 20s.', 'execution_error')).retryAfterMs).toBe(20_000);
  });

  it('puts the install hint for a missing Python module on the named server', () => {
    const c = classify(CASES.COMFYUI_DEPENDENCY_ERROR[0]![1], { context: { server: 'gpu-2' } });
    expect(c.hint).toMatch(/'insightface' on server gpu-2/);
  });

  it('does not retry an interrupt the job owner asked for', () => {
    expect(classify({ kind: 'interrupted', byOwner: true })).toMatchObject({ code: 'COMFYUI_INTERRUPTED', retryable: false, rule: 'interrupted.by-owner' });
    expect(classify({ kind: 'interrupted', byOwner: false })).toMatchObject({ code: 'COMFYUI_INTERRUPTED', retryable: true });
  });
});
