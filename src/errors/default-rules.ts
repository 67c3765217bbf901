/**
 * The built-in classification table: an ordered list of data rules (see `rules.ts` for the rule
 * format). Users extend or override it from configuration (`compileRules`).
 *
 * ORDER AND TIES
 * - The first rule (in this order) that matches decides. Within one rule, list entries are ORs and
 *   fields are ANDs. A piece of evidence that yields several candidates (a validation body with
 *   several bad nodes, or a corpus line with a body) takes the earliest rule matching ANY candidate;
 *   between candidates matching the same rule, the first in body order names the node.
 * - Sections, in order, and why:
 *   A. Structured evidence (our timeouts, interrupts, WebSocket closes, transport error codes,
 *      aborts, JavaScript bugs): their fields are exact, text adds nothing.
 *   B. Decisive content, most severe first, because logs often show several symptoms:
 *      1. the process died (killed, segfault, exit 137/139): a client sees a dropped server, and the
 *         kernel's "Out of memory: Killed process" must not read as a GPU OOM;
 *      2. the prompt_worker thread died (the server accepts but never runs again) beats the
 *         "Processing interrupted" or TypeError that precede it;
 *      3. disk full (fatal) beats any save or download failure it causes;
 *      4. out of memory, by exception type then by text; "CUDA error: out of memory" is OOM although
 *         it is a plain RuntimeError, so OOM comes before the CUDA-error rules;
 *      5. environment problems visible as CUDA/cuDNN/cuBLAS statuses (no kernel image, NOT_SUPPORTED,
 *         NOT_INITIALIZED) before sticky GPU faults, which take every other "CUDA error: ...";
 *      6. custom-node import failures and missing Python modules (before file-not-found rules: a
 *         failed import often says "No such file");
 *      7. missing or corrupt models, then missing node types, then device/dtype mismatches, then
 *         malformed graphs, then invalid input values. A body listing a missing model and a missing
 *         input (the widget dropped with the list) is about the model; loader inputs are recognised
 *         by name (ckpt_name, lora_name, ...) or by a model file extension on the value;
 *      8. output problems (nothing produced, saving failed), then filesystem permissions;
 *      9. stalls, rate limits and busy servers, credentials, interrupts.
 *   C. A network failure inside a node (the node's own call to a third-party API or download) is a
 *      generation error, not ours: where=execution_error, or a log with node-execution markers, or
 *      a log naming a third-party endpoint. Rate limits (429) and credentials were decided in B.
 *   D. HTTP statuses comfyguard itself received: 401/403 auth, 429 overloaded, 413 too large,
 *      408 timeout, 5xx server error, 404 on /view output missing, other 4xx invalid request.
 *   E. Transport symptoms in text (outside nodes): proxy/5xx phrases, then timeouts, then connection
 *      failures, then aiohttp's generic "Error handling request" 500.
 *   F. Fallbacks by evidence kind: a thrown JavaScript value is a bug of ours (INTERNAL_ERROR), a
 *      transport error is a connection error, anything else is a generation error (retry once).
 */
import type { RuleSpec } from './rule-spec.js';

const rx = (r: RegExp): string => r.source;

// ---- shared fragments ------------------------------------------------------------------------

/** Signs that a text comes from a node's execution inside ComfyUI. */
const NODE_MARKERS = rx(
  /!!! Exception during processing|Error occurred when executing|\*\*Node (?:ID|Type):\*\*|Node threw an error|Exception Message:|execution\.py", line \d+, in (?:execute|get_output_data|_?async_map_node_over_list|_?map_node_over_list|process_inputs)\b/,
);

/** Signs of a third-party endpoint (not ComfyUI itself). */
const UPSTREAM_MARKERS = rx(
  /https?:\/\/(?!(?:localhost|127\.|0\.0\.0\.0|10\.|192\.168\.|172\.(?:1[6-9]|2\d|3[01])\.|\[::1\])|[^\s/'"]*:8188)[^\s'"]+|host='(?!localhost|127\.|0\.0\.0\.0|10\.|192\.168\.)[^']+'|huggingface|hf_hub|hf-mirror|api\.comfy\.org|comfy_api_nodes|\bAPI (?:request|error|server|timeout|call|returned)|openai|civitai|replicate\.com|fal\.ai|bizyair/,
);

/** Local ComfyUI addresses: a connection failure naming them is between the client and ComfyUI. */
const LOCAL_COMFY = rx(/\b127\.0\.0\.1\b|\blocalhost\b|\b0\.0\.0\.0\b|:8188\b|ComfyUI (?:server|is not|not running)/);

/** Network failure words, used only together with node or third-party context. */
const NETWORK = rx(
  /timed? ?out\b|timeout|Connection ?(?:Error|refused|reset|aborted|broken)|\bECONNRESET\b|\bECONNREFUSED\b|\bETIMEDOUT\b|\bEAI_AGAIN\b|\bENOTFOUND\b|unreachable|not reachable|HTTP ?Error:? ?\d{3}|\b500\b|\b501\b|\b502\b|\b503\b|\b504\b|Service Unavailable|Bad Gateway|Gateway Time-?out|Internal Server Error|SSLError|SSL: |RemoteDisconnected|Remote end closed|ProxyError|Max retries exceeded|NewConnectionError|Failed to establish a new connection|IncompleteRead|ChunkedEncodingError|socket hang up|Name or service not known|getaddrinfo|Temporary failure in name resolution|ServerDisconnected|ClientConnectorError|ClientResponseError|currently unavailable|could not (?:connect|reach|download)|cannot (?:connect|reach|download)|unable to (?:connect|reach|download)|failed to (?:connect|reach|download|fetch)|download(?:ing)? failed|Error while downloading/,
);

/** Input names that select a model file (ckpt_name, lora_name, clip_name1, upscale_model, ...). */
const MODEL_INPUT =
  '(?:[\\w-]*?(?:ckpt|checkpoint|lora|vae|unet|clip|control_?net|controlnet|model|gligen|hypernetwork|ipadapter|instantid|pulid|insightface|embedding|gguf|diffusion|encoder|upscaler|weights?)[\\w-]*?_?(?:name|file|path|ckpt)(?:_?\\d+)?|(?:ckpt|checkpoint|lora|vae|unet|clip|clip_vision|control_?net|controlnet|model|ipadapter|[\\w-]*_model)(?:_?\\d+)?)';
const MODEL_EXT = '\\.(?:safetensors|ckpt|pt|pth|bin|gguf|onnx|sft|pkl|engine|trt)';

/** Filesystem failures that, next to an output path or a save call, mean saving the output failed. */
const FILE_ERRORS = rx(
  /No such file or directory|FileNotFoundError|NotADirectoryError|IsADirectoryError|WinError 267\b|directory name is invalid|Permission denied|PermissionError|Errno (?:2|13|22|24|30)\b|Too many open files|\bEMFILE\b|Read-only file system|Broken pipe|BrokenPipeError|\bEPIPE\b|could not (?:write|save|open)|cannot (?:write|save|open)|can't (?:write|save|open)|failed to (?:write|save|open)|unable to (?:write|save|open)|Access is denied/,
);
const SAVE_CONTEXT = rx(
  /[\\/]output[\\/]|\boutput (?:folder|directory|dir)\b|output_dir|save_images|\.save\(|\bin save\b|SaveImage|imwrite|VideoCombine|filename_prefix|ComfyUI[\\/]temp[\\/]|'output[\\/]/,
);

const PY_HTTP_5XX = rx(
  /Internal Server Error|Server got itself in trouble|Bad Gateway|Gateway Time-?out|Service Unavailable|upstream (?:connect error|timed out|prematurely closed)|\bHTTP(?: Error)?[ /:]*5\d\d\b|status(?: code)?[ :=]*5\d\d\b|returned (?:HTTP |status )?5\d\d\b|\bError[ :]*52[0-7]\b|\bcode[ :]*52[0-7]\b|origin (?:is )?unreachable|Web server is down|server replied: [^\n]*(?:Error|Unavailable|Gateway)/,
);

/** A library ComfyUI or a node pack needs, named as missing ("torchaudio missing", "xformers is not installed"). */
const LIBRARY_MISSING = ['torchaudio', 'torchvision', 'xformers', 'onnxruntime', 'insightface', 'opencv', 'cv2', 'ffmpeg', 'sageattention', 'flash[_-]attn', 'triton', 'spandrel', 'bitsandbytes']
  .map((lib) => `\\b${lib}(?: package)? (?:is )?(?:missing|not installed|unavailable)\\b`)
  .join('|');

// ---- the table -------------------------------------------------------------------------------

/** The built-in rules in evaluation order (see the order and tie rules at the top of this file). */
export const DEFAULT_RULES: readonly RuleSpec[] = Object.freeze([
  // A. Structured evidence --------------------------------------------------------------------
  { id: 'timeout.stall', code: 'COMFYUI_STALLED', when: { kind: ['timeout'], timeoutPhase: ['stall'] } },
  { id: 'timeout.ours', code: 'COMFYUI_TIMEOUT', when: { kind: ['timeout'] } },
  // The owner's own cancel: recorded as an interrupt but never retried.
  { id: 'interrupted.by-owner', code: 'COMFYUI_INTERRUPTED', retryable: false, when: { kind: ['interrupted'], byOwner: true } },
  { id: 'interrupted.by-other', code: 'COMFYUI_INTERRUPTED', when: { kind: ['interrupted'] } },
  { id: 'ws-close.policy', code: 'COMFYUI_AUTH_ERROR', when: { kind: ['ws_close'], wsCloseCode: [1008, 4001, 4003, 4401, 4403] } },
  { id: 'ws-close.server-error', code: 'COMFYUI_SERVER_ERROR', when: { kind: ['ws_close'], wsCloseCode: [1011] } },
  { id: 'ws-close.try-again-later', code: 'COMFYUI_OVERLOADED', when: { kind: ['ws_close'], wsCloseCode: [1013] } },
  { id: 'ws-close.too-big', code: 'COMFYUI_INVALID_PARAMETERS', when: { kind: ['ws_close'], wsCloseCode: [1009] } },
  { id: 'ws-close.dropped', code: 'COMFYUI_CONNECTION_ERROR', when: { kind: ['ws_close'] } },
  { id: 'aborted.by-caller', code: 'COMFYUI_INTERRUPTED', retryable: false, when: { exceptionType: '^AbortError$' } },
  { id: 'aborted.by-caller-code', code: 'COMFYUI_INTERRUPTED', retryable: false, when: { transportCode: ['ABORT_ERR', 'UND_ERR_ABORTED'] } },
  {
    id: 'transport.timeout',
    code: 'COMFYUI_TIMEOUT',
    when: { transportCode: ['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT', 'ESOCKETTIMEDOUT', 'ECONNABORTED_TIMEOUT'] },
  },
  { id: 'thrown.timeout-error', code: 'COMFYUI_TIMEOUT', when: { kind: ['thrown'], exceptionType: '^TimeoutError$' } },
  {
    id: 'transport.connection',
    code: 'COMFYUI_CONNECTION_ERROR',
    when: {
      transportCode: [
        'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'ENOTFOUND',
        'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED', 'ERR_SOCKET_CLOSED',
        'ERR_STREAM_PREMATURE_CLOSE', 'PROMPT_LOST',
      ],
    },
  },
  {
    id: 'transport.tls',
    code: 'COMFYUI_CONNECTION_ERROR',
    when: {
      transportCode: [
        'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
        'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_SSL_WRONG_VERSION_NUMBER', 'EPROTO', 'CERT_NOT_YET_VALID',
      ],
    },
  },
  // A JavaScript error thrown by our own code (not a network error wrapped in a TypeError).
  {
    id: 'thrown.javascript-bug',
    code: 'INTERNAL_ERROR',
    when: {
      kind: ['thrown'],
      exceptionType: '^(?:TypeError|ReferenceError|RangeError|SyntaxError|EvalError|URIError|AssertionError|ZodError)$',
      notMessage: [rx(/fetch failed|other side closed|terminated|socket|network|ECONN|ETIMEDOUT|ENOTFOUND/)],
    },
  },

  // B. Decisive content ----------------------------------------------------------------------
  {
    id: 'process.died',
    code: 'COMFYUI_CONNECTION_ERROR',
    when: {
      message: [
        rx(/^\s*Killed\s*$|\bKilled\s+(?:process\b|python|\S*main\.py)|\bOOMKilled\b|oom[-_ ]kill(?:er|ed)?\b|SIGKILL|exit(?:ed)? (?:with )?(?:code|status):? 13[79]\b|exit code:? 13[79]\b/),
        rx(/Segmentation fault|SIGSEGV|core dumped|Fatal Python error|Windows fatal exception|unexpectedly exited|exited unexpectedly|process (?:has )?(?:died|crashed)|server (?:process )?crashed/),
      ],
    },
  },
  {
    id: 'worker.thread-died',
    code: 'COMFYUI_GPU_FAULT',
    when: { message: [rx(/Exception in thread [^\n]*\(prompt_worker\)|prompt_worker[^\n]{0,40}(?:died|dead|crashed|exited)/)] },
  },
  {
    id: 'disk.full',
    code: 'COMFYUI_DISK_FULL',
    when: {
      message: [
        rx(/No space left on device|\bENOSPC\b|Errno 28\b|Disk quota exceeded|\bEDQUOT\b|Errno 122\b|not enough space on the disk|disk (?:is )?full|insufficient (?:disk|storage) space|out of disk space|no (?:free )?disk space/),
      ],
    },
  },
  { id: 'oom.exception-type', code: 'COMFYUI_OOM', when: { exceptionType: '(?:^|\\.)(?:OutOfMemoryError|MemoryError)$' } },
  {
    id: 'oom.text',
    code: 'COMFYUI_OOM',
    when: {
      message: [
        rx(/out of memory|OUT_OF_MEMORY|OutOfMemory|\bMemoryError\b|ErrorMemoryAllocation|DefaultCPUAllocator|not enough (?:GPU |video |device |system |host )*memory|Could not allocate tensor|Allocation on device|you ran out of memory|paging file is too small|os error 1455|CUBLAS_STATUS_ALLOC_FAILED|CUDNN_STATUS_ALLOC_FAILED|miopenStatusAllocFailed/),
        rx(/Cannot allocate memory|can't allocate memory|std::bad_alloc|\bENOMEM\b|Unable to allocate [\d.]+ ?[KMGT]i?B|failed to allocate (?:memory|[\d.]+ ?[KMGT]i?B)|\bOOM(?:ed)?\b|insufficient (?:GPU |video )?memory|memory (?:allocation|alloc) fail(?:ed|ure)/),
      ],
    },
  },
  {
    id: 'dependency.gpu-environment',
    code: 'COMFYUI_DEPENDENCY_ERROR',
    when: {
      message: [
        rx(/no kernel image is available|operation not supported|CUBLAS_STATUS_(?:NOT_SUPPORTED|NOT_INITIALIZED|ARCH_MISMATCH)|CUDNN_STATUS_(?:NOT_INITIALIZED|NOT_SUPPORTED|ARCH_MISMATCH|VERSION_MISMATCH)|not compiled with (?:CUDA|ROCm|MPS|XPU)|invalid device function|invalid device ordinal|hipErrorNoBinaryForGpu/),
        rx(/is not compatible with the current PyTorch installation|CUDA driver version is insufficient|Found no NVIDIA driver|No CUDA GPUs are available|no CUDA-capable device|incorrectly set up environment|cudaErrorNoDevice|cudaErrorInsufficientDriver|xformers? (?:wasn't|was not) built|No operator found for `?memory_efficient_attention|No CUDA runtime is found|is not (?:currently )?implemented for the \w+ device|Could not run 'aten::[^'\n]+' with arguments from the '\w+' backend/),
        rx(/MPS (?:framework|backend|device) (?:doesn't|does not) support|to the MPS backend but it does not have support|not linked with support for \w+ devices|cudaErrorNotSupported|cudaErrorSystemDriverMismatch|\berror 803\b|older driver|driver (?:version )?(?:is )?too old|rocBLAS error: Cannot read|TensileLibrary[^\n]{0,120}(?:No such file|not found)|cuDNN Frontend error|miopenStatus(?:NotInitialized|UnsupportedOp|NotImplemented)|CreateExecutionProviderInstance|onnxruntime_pybind_state\.cc|onnxruntime[\\/]core[\\/]providers[\\/](?:cuda|tensorrt|dml)|CUDA_PATH is set but CUDA wasn'?t able to be loaded/),
      ],
    },
  },
  // "CUDA unknown error" at start-up is usually a broken runtime (ZLUDA, driver); it is not specific.
  { id: 'dependency.gpu-unknown-error', code: 'COMFYUI_DEPENDENCY_ERROR', confidence: 'low', when: { message: [rx(/CUDA unknown error/)] } },
  { id: 'gpu.accelerator-error', code: 'COMFYUI_GPU_FAULT', when: { exceptionType: 'AcceleratorError$' } },
  {
    id: 'gpu.fault',
    code: 'COMFYUI_GPU_FAULT',
    when: {
      message: [
        rx(/illegal memory access|device-side assert|illegal instruction|unspecified launch failure|misaligned address|CUDA error:|HIP error:|CUDA kernel errors might be asynchronously reported|cudaError\w+|hipError\w+/),
        rx(/CUBLAS_STATUS_(?:EXECUTION_FAILED|INTERNAL_ERROR|MAPPING_ERROR|INVALID_VALUE)|CUDNN_STATUS_(?:EXECUTION_FAILED|INTERNAL_ERROR|MAPPING_ERROR|BAD_PARAM)|miopenStatus(?:InternalError|UnknownError|BadParm|InvalidValue)|uncorrectable ECC|ECC error|GPU (?:has fallen off the bus|is lost)|\bXid \d+|CUDA driver error|NCCL error/),
      ],
    },
  },
  {
    id: 'dependency.custom-node-import',
    code: 'COMFYUI_DEPENDENCY_ERROR',
    when: { message: [rx(/Cannot import [^\n]*module for custom nodes|IMPORT FAILED|custom node[^\n]{0,40}failed to (?:import|load)/)] },
  },
  { id: 'dependency.import-error-type', code: 'COMFYUI_DEPENDENCY_ERROR', when: { exceptionType: '(?:ModuleNotFoundError|ImportError)$' } },
  {
    id: 'dependency.python-environment',
    code: 'COMFYUI_DEPENDENCY_ERROR',
    when: {
      message: [
        rx(/ModuleNotFoundError|No module named|\bImportError\b|cannot import name|DLL load failed|undefined symbol|cannot open shared object file|WinError 126|\.dll["']? \(?or one of its dependencies|Could not find module '[^'\n]*\.(?:dll|so|pyd)'/),
        rx(/(?:compiled|built) (?:using|for|against) NumPy 1\.x|numpy\.core\.multiarray failed|Numpy is not available|module '[\w.]+' has no attribute|Exception when validating (?:inner )?node: name '[^'\n]+' is not defined|got an unexpected keyword argument/),
        rx(/triton\.\w|No module named 'triton'|triton (?:is )?not (?:installed|available)|torch\._inductor|InductorError|BackendCompilerFailed|torch\._dynamo|Error building extension|nvcc fatal|Microsoft Visual C\+\+ [\d.]+ or greater is required/),
        // A traceback frame at import time of a core extra or a custom node: the module failed to load.
        rx(/File "[^"\n]*(?:comfy_extras|custom_nodes)[\\/][^"\n]*", line \d+, in <module>|comfy[\\/]model_management\.py", line \d+, in <module>/),
        LIBRARY_MISSING,
        rx(/Couldn't find appropriate backend to handle uri|compiled with different CUDA (?:major )?versions|Unexpected architecture type in GGUF file|\bnot new enough\b|requires? a newer version of/),
      ],
    },
  },
  { id: 'model.not-in-list.input', code: 'COMFYUI_MODEL_MISSING', when: { validationType: ['value_not_in_list'], input: `^${MODEL_INPUT}$` } },
  { id: 'model.not-in-list.value', code: 'COMFYUI_MODEL_MISSING', when: { validationType: ['value_not_in_list'], value: `${MODEL_EXT}$` } },
  {
    id: 'model.not-in-list.text',
    code: 'COMFYUI_MODEL_MISSING',
    when: { message: [`Value not in list:?\\s*${MODEL_INPUT}\\s*:\\s*'`, `Value not in list:?\\s*[\\w.-]+\\s*:\\s*'[^'\\n]*${MODEL_EXT}'`] },
  },
  {
    id: 'model.file-not-found',
    code: 'COMFYUI_MODEL_MISSING',
    when: {
      message: [
        rx(/Model in folder '[^'\n]*' with filename '[^'\n]*' not found/),
        `No such file or directory[^\\n]{0,300}(?:${MODEL_EXT}\\b|[\\\\/]models[\\\\/])`,
        `${MODEL_EXT}'?:? No such file or directory`,
        rx(/\b(?:checkpoint|ckpt|lora|vae|unet|weights?)(?: file)?\b[^\n]{0,80}\b(?:was |is )?not found|model file[^\n]{0,80}not found|\bmodels? (?:file )?(?:was |is )?not found|could not find (?:the )?(?:model|checkpoint|lora|weights?)\b|\bNo [\w-]+(?: [\w-]+)? models? (?:were )?found\b|please download (?:one|it|them|the models?)\b/),
      ],
    },
  },
  {
    id: 'model.corrupt',
    code: 'COMFYUI_MODEL_MISSING',
    when: {
      message: [
        rx(/deserializing header|HeaderTooLarge|MetadataIncompleteBuffer|InvalidHeaderDeserialization|SafetensorError|safetensors file is (?:corrupt|incomplete|invalid)|PytorchStreamReader failed|failed finding central directory|invalid load key|Ran out of input|not a valid (?:safetensors|checkpoint|model) file|(?:checkpoint|model) file (?:is )?(?:corrupt|truncated|incomplete|damaged)|The file might be corrupted|unexpected EOF, expected \d+ more bytes|Weights only load failed/),
      ],
    },
  },
  {
    id: 'model.not-downloaded',
    code: 'COMFYUI_MODEL_MISSING',
    when: {
      message: [
        rx(/cannot find (?:the|an) appropriate (?:cached )?snapshot folder|LocalEntryNotFoundError|couldn't find (?:it|them|the requested files?) in the cached files|does not appear to have (?:a )?files? named|RepositoryNotFoundError|EntryNotFoundError/),
      ],
    },
  },
  {
    id: 'workflow.ui-format',
    code: 'COMFYUI_WORKFLOW_ERROR',
    when: { message: [rx(/last_node_id|last_link_id|KeyError[^\n]{0,60}'(?:nodes|links|prompt|last_node_id|class_type|inputs)'|workflow (?:is )?in (?:the )?UI format|not (?:in )?(?:the )?API format|expected (?:the |an )?API[- ]format|API format (?:is )?required/)] },
  },
  {
    id: 'workflow.ui-format-500',
    code: 'COMFYUI_WORKFLOW_ERROR',
    confidence: 'low',
    when: { messageAll: [rx(/TypeError|is not subscriptable|is not iterable|AttributeError/), rx(/validate_prompt|post_prompt/)] },
  },
  {
    id: 'workflow.malformed-body',
    code: 'COMFYUI_WORKFLOW_ERROR',
    when: { messageAll: [rx(/JSONDecodeError|Expecting value: line \d+ column|Invalid control character|Unterminated string/), rx(/Error handling request|post_prompt|request\.json\(\)|web_protocol/)] },
  },
  { id: 'missing-node.validation-type', code: 'COMFYUI_MISSING_NODE', when: { validationType: ['missing_node_type'] } },
  {
    id: 'missing-node.text',
    code: 'COMFYUI_MISSING_NODE',
    when: {
      message: [
        rx(/Cannot execute because (?:a )?node [^\n]{1,200}? does not exist|node types? (?:were|was) not found|Missing Node Types?|missing_node_type|unsupported node|Unknown node type|Node (?:type |class )?'[^'\n]+' (?:is )?(?:not found|does not exist|not registered)|node class[^\n]{0,40}not (?:found|registered)|\bnode (?:type|class)s? (?:is |was |were )?not found|custom nodes? (?:you )?(?:haven't|have not|are not|is not) (?:been )?installed|there are missing nodes|missing (?:one or more )?custom nodes|\bnode is not (?:installed|registered)/),
      ],
    },
  },
  { id: 'missing-node.class-map-keyerror', code: 'COMFYUI_MISSING_NODE', when: { exceptionType: 'KeyError$', message: [rx(/NODE_CLASS_MAP/)] } },
  { id: 'missing-node.class-map-text', code: 'COMFYUI_MISSING_NODE', when: { messageAll: [rx(/NODE_CLASS_MAP/), rx(/KeyError/)] } },
  // Any other exception (not a UI-format graph, not a missing node) raised while the server handles POST /prompt is the server's (a text 500).
  {
    id: 'server.prompt-handler-exception',
    code: 'COMFYUI_SERVER_ERROR',
    when: { messageAll: [rx(/in post_prompt\b|in validate_prompt\b/), rx(/\w+Error\b|Exception\b/)] },
  },
  {
    id: 'generation.device-or-dtype',
    code: 'COMFYUI_GENERATION_ERROR',
    when: {
      message: [
        rx(/Expected all tensors to be on the same device|found at least two devices|(?:type|dtype|device)\)?[^\n]{0,60}should be the same|expected (?:scalar type|object of scalar type|m1 and m2 to have the same dtype)|must have the same dtype|dtype mismatch/),
      ],
    },
  },
  {
    id: 'workflow.validation-type',
    code: 'COMFYUI_WORKFLOW_ERROR',
    when: { validationType: ['no_prompt', 'prompt_no_outputs', 'return_type_mismatch', 'bad_linked_input', 'exception_during_validation', 'exception_during_inner_validation'] },
  },
  {
    id: 'workflow.validation-text',
    code: 'COMFYUI_WORKFLOW_ERROR',
    when: {
      message: [
        rx(/Prompt has no (?:properly connected )?outputs|No prompt provided|\bno prompt\b|missing the class[ _]type property|Return type mismatch|Bad linked input|Exception when validating (?:inner )?node|received_type\(|prompt_no_outputs|Dependency cycle detected|DependencyCycleError/),
      ],
    },
  },
  {
    id: 'workflow.incompatible-models',
    code: 'COMFYUI_WORKFLOW_ERROR',
    when: {
      message: [
        rx(/shapes cannot be multiplied|size mismatch for|Given groups=\d+|to have \d+ channels, but got \d+ channels|The size of tensor a \(\d+\) must match the size of tensor b|Sizes of tensors must match|must match the existing size|shape '\[[\d, -]+\]' is invalid for input of size|Error\(s\) in loading state_dict|Could not detect model type|\b(?:clip|vae|model|control_?net|clip_vision|unet) (?:input )?is invalid: None|Expected \d+ input channels but got \d+|\bUnsupportedModel(?:Error)?\b/),
      ],
    },
  },
  {
    id: 'invalid.validation-type',
    code: 'COMFYUI_INVALID_PARAMETERS',
    when: { validationType: ['value_smaller_than_min', 'value_bigger_than_max', 'invalid_input_type', 'value_not_in_list', 'required_input_missing', 'custom_validation_failed'] },
  },
  {
    id: 'invalid.validation-text',
    code: 'COMFYUI_INVALID_PARAMETERS',
    when: {
      message: [rx(/smaller than min of|bigger than max of|Failed to convert an input value|Required input is missing|Custom validation failed|Invalid image file|Value not in list/)],
    },
  },
  {
    id: 'invalid.unreadable-input',
    code: 'COMFYUI_INVALID_PARAMETERS',
    when: { message: [rx(/could not be loaded with cv\b|cannot identify image file|UnidentifiedImageError/)] },
  },
  {
    id: 'invalid.too-large',
    code: 'COMFYUI_INVALID_PARAMETERS',
    when: { message: [rx(/\bstatus:? 413\b|\b413\b[^\n]{0,30}(?:Too Large|Entity)|Request Entity Too Large|Payload Too Large|Maximum request body size|request body (?:is )?too large|exceeds? (?:the )?(?:maximum|max) (?:upload|body|request) size/)] },
  },
  {
    id: 'invalid.rejected-by-provider',
    code: 'COMFYUI_INVALID_PARAMETERS',
    when: { message: [rx(/moderat(?:ed|ion)|content (?:policy|filter)|safety (?:filter|system|checker)|flagged (?:as|by|for)|NSFW content detected/)] },
  },
  {
    id: 'invalid.provider-400',
    code: 'COMFYUI_INVALID_PARAMETERS',
    confidence: 'low',
    when: {
      message: [rx(/'400: |"400: |\b400\b[^\n]{0,20}Bad Request|Bad Request[^\n]{0,20}\b400\b|\b(?:HTTP|status|code|Error)[: ]+400\b/)],
      notMessage: [rx(/api[ _-]?key|credential|unauthori[sz]ed|access token|\bkey is invalid/)],
    },
  },
  {
    id: 'output.not-allowed',
    code: 'COMFYUI_OUTPUT_ERROR',
    when: { message: [rx(/outside the output (?:folder|directory)|Saving image outside/)] },
  },
  {
    id: 'output.none-produced',
    code: 'COMFYUI_OUTPUT_ERROR',
    when: {
      message: [
        rx(/does not exist in the specified output folder|no (?:new )?(?:images?|outputs?|files?|videos?|results?) (?:is |are |were |was )?(?:generated|produced|returned|saved|created)|(?:is|are|was|were) not (?:being )?saved (?:to|in) the output|produced no (?:outputs?|images?|files?)|did not produce any|output (?:file|image)s? (?:was |were )?not found|(?:failed to|could not|unable to|cannot) save (?:the )?(?:outputs?|images?|videos?|files?|results?)\b/),
      ],
    },
  },
  // Not when a loader reads a file that happens to sit under output/.
  { id: 'output.save-failed', code: 'COMFYUI_OUTPUT_ERROR', confidence: 'low', when: { messageAll: [FILE_ERRORS, SAVE_CONTEXT], notMessage: [rx(/\*\*Node Type:\*\* Load|executing Load/)] } },
  { id: 'output.save-node-failed', code: 'COMFYUI_OUTPUT_ERROR', when: { nodeType: '^Save|Save(?:Image|Video|Audio|Animated\\w*|Latent)$|VideoCombine|Output$', message: [FILE_ERRORS] } },
  {
    id: 'dependency.filesystem-permission',
    code: 'COMFYUI_DEPENDENCY_ERROR',
    when: { message: [rx(/\[Errno 13\]|\bPermissionError\b|Permission denied: |Read-only file system|\[WinError 5\]|Access is denied/)], notMessage: [rx(/\bkey is invalid|api[ _-]?key/)] },
  },
  {
    id: 'stalled.text',
    code: 'COMFYUI_STALLED',
    when: {
      message: [
        rx(/\bstall(?:ed|ing|s)?\b|stopped without a known outcome|(?:has|have) not (?:advanced|progressed|moved)|no progress (?:for|in|since)|stopped making progress|(?:failed|did not|didn't) (?:to )?start (?:within|in time)|never started|waiting for (?:the )?(?:job|prompt|execution|generation) to start|blocking new generations|appears? (?:to be )?(?:stuck|hung|frozen)|(?:is|got|seems) stuck|queue (?:is )?not moving/),
      ],
    },
  },
  {
    id: 'stalled.described',
    code: 'COMFYUI_STALLED',
    confidence: 'low',
    when: {
      message: [
        rx(/stuck (?:at|on|in)\b|\bhangs? (?:at|on) (?:step|\d+ ?%)|progress(?: bar)? (?:just )?(?:stopped|stuck|froze)|\bstops? (?:at|on) \d+ ?%|(?:not|doesn't|does not|never) mov(?:e|es|ing)\b[^\n]{0,40}(?:bar|steps?|%)|(?:getting|gets|got) stuck/),
      ],
    },
  },
  {
    id: 'overloaded.rate-limit',
    code: 'COMFYUI_OVERLOADED',
    when: {
      message: [
        rx(/Too Many Requests|rate[ -]?limit(?:ed|ing|s)?\b|RateLimitError|\b(?:HTTP|status|code|Error)[ :]*429\b|\b429 Client Error|RESOURCE_EXHAUSTED|Resource has been exhausted|exceeded (?:your|the) (?:rate|request) (?:limit|quota)|quota exceeded for|throttl(?:ed|ing)/),
      ],
    },
  },
  {
    id: 'overloaded.busy',
    code: 'COMFYUI_OVERLOADED',
    when: {
      message: [
        rx(/\bis (?:currently |too )?busy\b|\bare (?:currently |too )?busy\b|server (?:is )?busy|服务器繁忙|\boverloaded\b|queue (?:is )?full|Failed to enqueue|(?:could not|cannot|unable to) enqueue|too many (?:pending|queued|concurrent) (?:jobs|requests|prompts|tasks)|at (?:full )?capacity|no (?:available|free) (?:workers?|gpus?|capacity)/),
      ],
    },
  },
  {
    id: 'auth.credentials',
    code: 'COMFYUI_AUTH_ERROR',
    when: {
      message: [
        rx(/Unauthori[sz]ed|\b403\b[^\n]{0,20}Forbidden|\bHTTP[ :]*40[137]\b|\bstatus[ :]*40[137]\b|\bresponse[ :]*40[137]\b|\bcode[ :]*40[137]\b|\bForbidden\b|Handshake status 40[13]|bad HTTP response '?40[13]|Please log ?in|log ?in (?:first|required)|not logged in|not authori[sz]ed|authentication (?:failed|required|error)|AuthenticationError|PermissionDeniedError|invalid[_ ](?:api[ _-]?key|token|credentials)|incorrect api[ _-]?key|api[ _-]?key (?:is )?(?:missing|invalid|required|not (?:set|provided|found|valid))|missing (?:api[ _-]?key|credentials|token|Authorization)/),
        rx(/problem with your account|account (?:is )?(?:suspended|disabled|banned|locked|not found)|insufficient (?:credits|balance|funds)|insufficient_quota|credit balance is too low|not enough credits|out of credits|Payment Required|\b402\b|billing|GatedRepoError|gated repo|token (?:has )?expired|non matching host and origin|Access denied|security[_ ]level|not allowed (?:with|in) this security|\b(?:api[ _-]?)?key is invalid/),
      ],
    },
  },
  { id: 'interrupted.exception-type', code: 'COMFYUI_INTERRUPTED', when: { exceptionType: 'InterruptProcessingException$|^Interrupted$' } },
  {
    id: 'interrupted.text',
    code: 'COMFYUI_INTERRUPTED',
    when: {
      message: [rx(/Processing interrupted|Interrupting prompt|InterruptProcessingException|execution_interrupted|interrupted by (?:the )?user|(?:stopped|cancell?ed|aborted) by (?:the )?user|user (?:interrupt|cancel)(?:ed|led)?\b|\bprompt (?:was |has been )?(?:interrupted|cancell?ed)\b|\bjob (?:was |has been )?(?:interrupted|cancell?ed)\b|\bexecution (?:was |has been )?(?:interrupted|cancell?ed)\b|\bgeneration (?:was |has been )?(?:interrupted|cancell?ed)\b|\bworkflow (?:was |has been )?(?:interrupted|cancell?ed)\b|\brun (?:was |has been )?(?:interrupted|cancell?ed)\b/)],
    },
  },
  { id: 'workflow.invalid-prompt', code: 'COMFYUI_WORKFLOW_ERROR', when: { validationType: ['invalid_prompt', 'legacy'] } },
  {
    id: 'invalid.outputs-failed-validation',
    code: 'COMFYUI_INVALID_PARAMETERS',
    when: { message: [rx(/Prompt outputs failed validation|Failed to validate prompt for output|prompt_outputs_failed_validation/)] },
  },

  // C. Network failures inside a node ---------------------------------------------------------
  { id: 'node.network-failure', code: 'COMFYUI_GENERATION_ERROR', when: { where: ['execution_error'], hasHttpStatus: false, message: [NETWORK] } },
  {
    id: 'node.network-failure-in-log',
    code: 'COMFYUI_GENERATION_ERROR',
    when: { where: ['log', 'python_exception', 'unknown'], hasHttpStatus: false, messageAll: [NETWORK, NODE_MARKERS] },
  },
  {
    id: 'node.third-party-failure',
    code: 'COMFYUI_GENERATION_ERROR',
    when: { where: ['log', 'python_exception', 'unknown'], hasHttpStatus: false, messageAll: [NETWORK, UPSTREAM_MARKERS], notMessage: [LOCAL_COMFY] },
  },

  // D. HTTP statuses comfyguard received ------------------------------------------------------
  { id: 'http.auth', code: 'COMFYUI_AUTH_ERROR', when: { httpStatus: [401, 403, 407] } },
  { id: 'http.rate-limited', code: 'COMFYUI_OVERLOADED', when: { httpStatus: [429] } },
  { id: 'http.too-large', code: 'COMFYUI_INVALID_PARAMETERS', when: { httpStatus: [413] } },
  { id: 'http.request-timeout', code: 'COMFYUI_TIMEOUT', when: { httpStatus: [408] } },
  { id: 'http.server-error', code: 'COMFYUI_SERVER_ERROR', when: { httpStatus: ['5xx'] } },
  { id: 'http.output-not-found', code: 'COMFYUI_OUTPUT_ERROR', when: { httpStatus: [404], path: '(?:^|/)view\\b' } },
  { id: 'http.client-error', code: 'COMFYUI_INVALID_PARAMETERS', confidence: 'low', when: { httpStatus: ['4xx'] } },
  // An API call answered with a redirect is usually an auth gateway sending it to a login page.
  { id: 'http.redirect', code: 'COMFYUI_AUTH_ERROR', confidence: 'low', when: { httpStatus: [301, 302, 303, 307, 308] } },
  { id: 'http.unexpected-status', code: 'COMFYUI_SERVER_ERROR', when: { hasHttpStatus: true } },

  // E. Transport symptoms in text, outside nodes ----------------------------------------------
  { id: 'server.error-text', code: 'COMFYUI_SERVER_ERROR', when: { message: [PY_HTTP_5XX] } },
  {
    id: 'timeout.text',
    code: 'COMFYUI_TIMEOUT',
    when: {
      message: [
        rx(/timed? ?out\b|\btime-?outs?\b|TimeoutError|TimeoutException|Timeout Error|ReadTimeout|ConnectTimeout|HeadersTimeout|BodyTimeout|deadline exceeded|max retries (?:reached|exceeded) while waiting|ERR_CONNECTION_TIMED_OUT|ERR_TIMED_OUT|not ready after|took too long|did not (?:finish|complete|respond) (?:in time|within)|no response (?:after|within)|WinError 10060|Errno 110\b/),
      ],
    },
  },
  {
    id: 'connection.text',
    code: 'COMFYUI_CONNECTION_ERROR',
    when: {
      message: [
        rx(/\bECONNREFUSED\b|\bECONNRESET\b|\bECONNABORTED\b|\bEHOSTUNREACH\b|\bENETUNREACH\b|\bENOTFOUND\b|\bEAI_AGAIN\b|\bEPIPE\b|socket hang up|Connection ?refused|connection (?:was )?reset|Connection ?aborted|Connection broken|ConnectionError|ConnectionResetError|ConnectionClosed|NewConnectionError|Failed to establish a new connection|actively refused|WinError 1006[14]|Errno 111\b|Errno 104\b|RemoteDisconnected|Remote end closed|IncompleteRead|ChunkedEncodingError/),
        rx(/no close frame|without completing the close handshake|abnormal closure|\b1006\b|UND_ERR_SOCKET|other side closed|fetch failed|getaddrinfo|Name or service not known|nodename nor servname|Temporary failure in name resolution|(?:not |un)reachable|could not (?:connect|reach)|couldn't (?:connect|reach)|cannot (?:connect|reach)|can't (?:connect|reach)|unable to (?:connect|reach)|failed to (?:connect|reach)|not running (?:on|at)|ComfyUI (?:is )?not running|closing transport|Failed to proxy|ended abruptly|context canceled|connection (?:was )?(?:closed|lost|dropped)|connection to [^\n]{1,60} (?:was )?lost|(?:WebSocket |ws )?connection (?:to \S{1,200} )?failed|\bdisconnected\b|certificate|SSLError|TLS handshake/),
        rx(/Failed to fetch|\breconnecting\b|重新连接|websocket\s*断|WebSocket error|lost connect(?:ion)?\b|refused to connect|ERR_CONNECTION_(?:REFUSED|RESET|CLOSED|ABORTED|FAILED)|ERR_NAME_NOT_RESOLVED|ERR_INTERNET_DISCONNECTED|ERR_NETWORK_CHANGED|ERR_EMPTY_RESPONSE|server (?:may|might) (?:still )?be (?:loading|starting)|out of system resource/),
      ],
    },
  },
  { id: 'server.aiohttp-500', code: 'COMFYUI_SERVER_ERROR', when: { message: [rx(/Error handling request/)] } },
  // The ComfyUI process ended (desktop app log, or the portable build's .bat reaching `pause`), when
  // nothing above explains why: a client sees the server gone.
  {
    id: 'process.exited',
    code: 'COMFYUI_CONNECTION_ERROR',
    when: { message: [rx(/process exited with code|exited with (?:code|status) -?\d+|>\s*pause\s*$|Press any key to continue|Appuyez sur une touche/)] },
  },

  // G. Weak guesses: a signal shared with other causes, so the verdict says confidence 'low' ----
  // A ComfyUI or node class lacking an attribute: node and core (or two packs) of mismatched versions.
  {
    id: 'dependency.api-mismatch',
    code: 'COMFYUI_DEPENDENCY_ERROR',
    confidence: 'low',
    when: { message: [rx(/type object '\w+' has no attribute|'(?!NoneType'|Tensor')[A-Z]\w*' object has no attribute/)] },
  },
  // A text encoder or ControlNet input that is None: the checkpoint or loader did not provide it.
  {
    id: 'workflow.none-model-input',
    code: 'COMFYUI_WORKFLOW_ERROR',
    confidence: 'low',
    when: { message: [rx(/'NoneType' object has no attribute '(?:tokenize|encode_from_tokens)'/), rx(/executing \w*ControlNet\w*:\s*'NoneType' object has no attribute/)] },
  },
  // A loader missing an expected weight: the file is a different kind of model than the loader expects.
  {
    id: 'workflow.model-missing-weight-key',
    code: 'COMFYUI_WORKFLOW_ERROR',
    confidence: 'low',
    when: { message: [rx(/KeyError: '[\w.]+\.(?:weight|bias)'|executing \w*Loader\w*:\s*'[\w.]+\.(?:weight|bias)'/)] },
  },
  // ComfyUI's loaders call .lower() on the model path; None there means the file was not found.
  { id: 'model.path-none', code: 'COMFYUI_MODEL_MISSING', confidence: 'low', when: { message: [rx(/'NoneType' object has no attribute 'lower'/)] } },

  // F. Fallbacks ----------------------------------------------------------------------------
  { id: 'fallback.thrown', code: 'INTERNAL_ERROR', when: { kind: ['thrown'] } },
  { id: 'fallback.transport', code: 'COMFYUI_CONNECTION_ERROR', when: { kind: ['transport'] }, confidence: 'low' },
  { id: 'fallback.validation', code: 'COMFYUI_INVALID_PARAMETERS', when: { kind: ['validation'] }, confidence: 'low' },
  { id: 'fallback.any', code: 'COMFYUI_GENERATION_ERROR', when: {}, confidence: 'low' },
] satisfies RuleSpec[]);
