/**
 * The node catalog: the node types this simulated server "has", as ComfyUI 0.3.64 describes them in
 * `/object_info` (input specs, outputs, display names, modules, categories). Definitions follow
 * ComfyUI's own `nodes.py`, `comfy_extras/*` and the example `websocket_image_save` custom node;
 * combo lists that depend on files (checkpoints, LoRAs, input images) are built per request.
 */
import type { InputTypes, ValidationEnv, ValidationNodeSpec } from '../comfy/validate.js';

export type { InputSpecTuple, InputTypes } from '../comfy/validate.js';

/** Files the server can see, per model folder, and in its `input/` directory. */
export interface CatalogContext {
  modelList(folder: string): string[];
  inputFiles(): string[];
  /** Content fingerprint of an input file (LoadImage's IS_CHANGED hashes the file). */
  inputFileHash(name: string): string;
}


/** Where a node's code lives, for realistic tracebacks. */
export interface NodeSource {
  file: string;
  line: number;
  fn: string;
  code: string;
}

export interface NodeSpec {
  classType: string;
  displayName: string | null;
  description: string;
  pythonModule: string;
  category: string;
  outputNode: boolean;
  returnTypes: string[];
  outputTooltips?: Array<string | null>;
  /** V3 nodes (`io.ComfyNode`) report every flag in object_info, V1 nodes only the set ones. */
  v3?: boolean;
  inputTypes(ctx: CatalogContext): InputTypes;
  /** Inputs checked by the node's own VALIDATE_INPUTS (ComfyUI then skips range/combo checks). */
  validateInputs?: readonly string[];
  /** The node's VALIDATE_INPUTS: true, or the text ComfyUI appends to the error details. */
  customValidate?(inputs: Record<string, unknown>, ctx: CatalogContext): true | string;
  /** IS_CHANGED: 'always' for nodes that must re-run each time, or a fingerprint of the inputs. */
  isChanged?: 'always' | ((inputs: Record<string, unknown>, ctx: CatalogContext) => string);
  /** Literal inputs that name a model file, mapped to the model folder. */
  modelInputs?: Readonly<Record<string, string>>;
  source: NodeSource;
}

export const MAX_RESOLUTION = 16384;
/** 0xffffffffffffffff rounds to 2^64 as a JSON number; JavaScript cannot hold the exact value. */
const MAX_SEED = 2 ** 64;

export const SAMPLER_NAMES = [
  'euler', 'euler_cfg_pp', 'euler_ancestral', 'euler_ancestral_cfg_pp', 'heun', 'heunpp2', 'dpm_2', 'dpm_2_ancestral',
  'lms', 'dpm_fast', 'dpm_adaptive', 'dpmpp_2s_ancestral', 'dpmpp_2s_ancestral_cfg_pp', 'dpmpp_sde', 'dpmpp_sde_gpu',
  'dpmpp_2m', 'dpmpp_2m_cfg_pp', 'dpmpp_2m_sde', 'dpmpp_2m_sde_gpu', 'dpmpp_2m_sde_heun', 'dpmpp_2m_sde_heun_gpu',
  'dpmpp_3m_sde', 'dpmpp_3m_sde_gpu', 'ddpm', 'lcm', 'ipndm', 'ipndm_v', 'deis', 'res_multistep', 'res_multistep_cfg_pp',
  'res_multistep_ancestral', 'res_multistep_ancestral_cfg_pp', 'gradient_estimation', 'gradient_estimation_cfg_pp',
  'er_sde', 'seeds_2', 'seeds_3', 'sa_solver', 'sa_solver_pece', 'ddim', 'uni_pc', 'uni_pc_bh2',
];

export const SCHEDULER_NAMES = [
  'simple', 'sgm_uniform', 'karras', 'exponential', 'ddim_uniform', 'beta', 'normal', 'linear_quadratic', 'kl_optimal',
];

/** Model folders in ComfyUI's `folder_names_and_paths` order (what `GET /models` lists). */
export const MODEL_FOLDERS = [
  'checkpoints', 'configs', 'loras', 'vae', 'text_encoders', 'diffusion_models', 'clip_vision', 'style_models',
  'embeddings', 'diffusers', 'vae_approx', 'controlnet', 'gligen', 'upscale_models', 'custom_nodes', 'hypernetworks',
  'photomaker', 'classifiers', 'model_patches', 'audio_encoders',
];

/** The model files a fresh simulator has. */
export const DEFAULT_MODELS: Readonly<Record<string, readonly string[]>> = {
  checkpoints: ['sd_xl_base_1.0.safetensors', 'v1-5-pruned-emaonly.ckpt'],
  loras: ['add_detail.safetensors', 'sdxl_lightning_4step_lora.safetensors'],
  vae: ['sdxl_vae.safetensors', 'vae-ft-mse-840000-ema-pruned.safetensors'],
  diffusion_models: ['flux1-dev.safetensors'],
  text_encoders: ['clip_l.safetensors', 't5xxl_fp16.safetensors'],
  upscale_models: ['RealESRGAN_x4plus.pth'],
  embeddings: [],
};

const IMAGE_EXTENSIONS = new Set(['png', 'jpg', 'jpeg', 'webp', 'gif', 'bmp', 'tif', 'tiff']);

/** Whether ComfyUI's mimetype filter would list this input file as an image. */
export function isImageFile(name: string): boolean {
  return IMAGE_EXTENSIONS.has(name.split('.').pop()?.toLowerCase() ?? '');
}

const UPSCALE_METHODS = ['nearest-exact', 'bilinear', 'area', 'bicubic', 'lanczos'];
const SAVE_IMAGE_SOURCE: NodeSource = {
  file: 'nodes.py',
  line: 1590,
  fn: 'save_images',
  code: 'img.save(os.path.join(full_output_folder, file), pnginfo=metadata, compress_level=self.compress_level)',
};

function v1(spec: Omit<NodeSpec, 'v3'>): NodeSpec {
  return spec;
}

function vaeList(ctx: CatalogContext): string[] {
  const approx = ctx.modelList('vae_approx');
  const has = (p: string) => approx.some((f) => f.startsWith(p));
  const out = [...ctx.modelList('vae')];
  if (has('taesd_decoder.') && has('taesd_encoder.')) out.push('taesd');
  if (has('taesdxl_decoder.') && has('taesdxl_encoder.')) out.push('taesdxl');
  if (has('taesd3_decoder.') && has('taesd3_encoder.')) out.push('taesd3');
  if (has('taef1_encoder.') && has('taef1_decoder.')) out.push('taef1');
  out.push('pixel_space');
  return out;
}

const SPECS: NodeSpec[] = [
  v1({
    classType: 'CheckpointLoaderSimple',
    displayName: 'Load Checkpoint',
    description: 'Loads a diffusion model checkpoint, diffusion models are used to denoise latents.',
    pythonModule: 'nodes',
    category: 'loaders',
    outputNode: false,
    returnTypes: ['MODEL', 'CLIP', 'VAE'],
    outputTooltips: [
      'The model used for denoising latents.',
      'The CLIP model used for encoding text prompts.',
      'The VAE model used for encoding and decoding images to and from latent space.',
    ],
    inputTypes: (ctx) => ({
      required: { ckpt_name: [ctx.modelList('checkpoints'), { tooltip: 'The name of the checkpoint (model) to load.' }] },
    }),
    modelInputs: { ckpt_name: 'checkpoints' },
    source: { file: 'nodes.py', line: 578, fn: 'load_checkpoint', code: 'out = comfy.sd.load_checkpoint_guess_config(ckpt_path, output_vae=True, output_clip=True, embedding_directory=folder_paths.get_folder_paths("embeddings"))' },
  }),
  v1({
    classType: 'UNETLoader',
    displayName: 'Load Diffusion Model',
    description: '',
    pythonModule: 'nodes',
    category: 'advanced/loaders',
    outputNode: false,
    returnTypes: ['MODEL'],
    inputTypes: (ctx) => ({
      required: {
        unet_name: [ctx.modelList('diffusion_models')],
        weight_dtype: [['default', 'fp8_e4m3fn', 'fp8_e4m3fn_fast', 'fp8_e5m2']],
      },
    }),
    modelInputs: { unet_name: 'diffusion_models' },
    source: { file: 'nodes.py', line: 925, fn: 'load_unet', code: 'model = comfy.sd.load_diffusion_model(unet_path, model_options=model_options)' },
  }),
  v1({
    classType: 'VAELoader',
    displayName: 'Load VAE',
    description: '',
    pythonModule: 'nodes',
    category: 'loaders',
    outputNode: false,
    returnTypes: ['VAE'],
    inputTypes: (ctx) => ({ required: { vae_name: [vaeList(ctx)] } }),
    modelInputs: { vae_name: 'vae' },
    source: { file: 'nodes.py', line: 783, fn: 'load_vae', code: 'sd = comfy.utils.load_torch_file(vae_path)' },
  }),
  v1({
    classType: 'LoraLoader',
    displayName: 'Load LoRA',
    description:
      'LoRAs are used to modify diffusion and CLIP models, altering the way in which latents are denoised such as applying styles. Multiple LoRA nodes can be linked together.',
    pythonModule: 'nodes',
    category: 'loaders',
    outputNode: false,
    returnTypes: ['MODEL', 'CLIP'],
    outputTooltips: ['The modified diffusion model.', 'The modified CLIP model.'],
    inputTypes: (ctx) => ({
      required: {
        model: ['MODEL', { tooltip: 'The diffusion model the LoRA will be applied to.' }],
        clip: ['CLIP', { tooltip: 'The CLIP model the LoRA will be applied to.' }],
        lora_name: [ctx.modelList('loras'), { tooltip: 'The name of the LoRA.' }],
        strength_model: ['FLOAT', { default: 1.0, min: -100.0, max: 100.0, step: 0.01, tooltip: 'How strongly to modify the diffusion model. This value can be negative.' }],
        strength_clip: ['FLOAT', { default: 1.0, min: -100.0, max: 100.0, step: 0.01, tooltip: 'How strongly to modify the CLIP model. This value can be negative.' }],
      },
    }),
    modelInputs: { lora_name: 'loras' },
    source: { file: 'nodes.py', line: 672, fn: 'load_lora', code: 'lora = comfy.utils.load_torch_file(lora_path, safe_load=True)' },
  }),
  v1({
    classType: 'CLIPTextEncode',
    displayName: 'CLIP Text Encode (Prompt)',
    description:
      'Encodes a text prompt using a CLIP model into an embedding that can be used to guide the diffusion model towards generating specific images.',
    pythonModule: 'nodes',
    category: 'conditioning',
    outputNode: false,
    returnTypes: ['CONDITIONING'],
    outputTooltips: ['A conditioning containing the embedded text used to guide the diffusion model.'],
    inputTypes: () => ({
      required: {
        text: ['STRING', { multiline: true, dynamicPrompts: true, tooltip: 'The text to be encoded.' }],
        clip: ['CLIP', { tooltip: 'The CLIP model used for encoding the text.' }],
      },
    }),
    source: { file: 'nodes.py', line: 74, fn: 'encode', code: 'return (clip.encode_from_tokens_scheduled(tokens), )' },
  }),
  v1({
    classType: 'EmptyLatentImage',
    displayName: 'Empty Latent Image',
    description: 'Create a new batch of empty latent images to be denoised via sampling.',
    pythonModule: 'nodes',
    category: 'latent',
    outputNode: false,
    returnTypes: ['LATENT'],
    outputTooltips: ['The empty latent image batch.'],
    inputTypes: () => ({
      required: {
        width: ['INT', { default: 512, min: 16, max: MAX_RESOLUTION, step: 8, tooltip: 'The width of the latent images in pixels.' }],
        height: ['INT', { default: 512, min: 16, max: MAX_RESOLUTION, step: 8, tooltip: 'The height of the latent images in pixels.' }],
        batch_size: ['INT', { default: 1, min: 1, max: 4096, tooltip: 'The number of latent images in the batch.' }],
      },
    }),
    source: { file: 'nodes.py', line: 1185, fn: 'generate', code: 'latent = torch.zeros([batch_size, 4, height // 8, width // 8], device=self.device)' },
  }),
  {
    classType: 'EmptySD3LatentImage',
    displayName: null,
    description: '',
    pythonModule: 'comfy_extras.nodes_sd3',
    category: 'latent/sd3',
    outputNode: false,
    returnTypes: ['LATENT'],
    outputTooltips: [null],
    v3: true,
    inputTypes: () => ({
      required: {
        width: ['INT', { default: 1024, min: 16, max: MAX_RESOLUTION, step: 16 }],
        height: ['INT', { default: 1024, min: 16, max: MAX_RESOLUTION, step: 16 }],
        batch_size: ['INT', { default: 1, min: 1, max: 4096 }],
      },
    }),
    source: { file: 'comfy_extras/nodes_sd3.py', line: 57, fn: 'execute', code: 'latent = torch.zeros([batch_size, 16, height // 8, width // 8], device=comfy.model_management.intermediate_device())' },
  },
  v1({
    classType: 'KSampler',
    displayName: 'KSampler',
    description: 'Uses the provided model, positive and negative conditioning to denoise the latent image.',
    pythonModule: 'nodes',
    category: 'sampling',
    outputNode: false,
    returnTypes: ['LATENT'],
    outputTooltips: ['The denoised latent.'],
    inputTypes: () => ({
      required: {
        model: ['MODEL', { tooltip: 'The model used for denoising the input latent.' }],
        seed: ['INT', { default: 0, min: 0, max: MAX_SEED, control_after_generate: true, tooltip: 'The random seed used for creating the noise.' }],
        steps: ['INT', { default: 20, min: 1, max: 10000, tooltip: 'The number of steps used in the denoising process.' }],
        cfg: [
          'FLOAT',
          {
            default: 8.0,
            min: 0.0,
            max: 100.0,
            step: 0.1,
            round: 0.01,
            tooltip:
              'The Classifier-Free Guidance scale balances creativity and adherence to the prompt. Higher values result in images more closely matching the prompt however too high values will negatively impact quality.',
          },
        ],
        sampler_name: [SAMPLER_NAMES, { tooltip: 'The algorithm used when sampling, this can affect the quality, speed, and style of the generated output.' }],
        scheduler: [SCHEDULER_NAMES, { tooltip: 'The scheduler controls how noise is gradually removed to form the image.' }],
        positive: ['CONDITIONING', { tooltip: 'The conditioning describing the attributes you want to include in the image.' }],
        negative: ['CONDITIONING', { tooltip: 'The conditioning describing the attributes you want to exclude from the image.' }],
        latent_image: ['LATENT', { tooltip: 'The latent image to denoise.' }],
        denoise: [
          'FLOAT',
          {
            default: 1.0,
            min: 0.0,
            max: 1.0,
            step: 0.01,
            tooltip: 'The amount of denoising applied, lower values will maintain the structure of the initial image allowing for image to image sampling.',
          },
        ],
      },
    }),
    source: { file: 'comfy/samplers.py', line: 1145, fn: 'sample', code: 'samples = sampler.sample(noise, positive, negative, cfg=cfg, latent_image=latent_image, start_step=start_step, last_step=last_step, force_full_denoise=force_full_denoise, denoise_mask=noise_mask, sigmas=sigmas, callback=callback, disable_pbar=disable_pbar, seed=seed)' },
  }),
  v1({
    classType: 'KSamplerAdvanced',
    displayName: 'KSampler (Advanced)',
    description: '',
    pythonModule: 'nodes',
    category: 'sampling',
    outputNode: false,
    returnTypes: ['LATENT'],
    inputTypes: () => ({
      required: {
        model: ['MODEL'],
        add_noise: [['enable', 'disable']],
        noise_seed: ['INT', { default: 0, min: 0, max: MAX_SEED, control_after_generate: true }],
        steps: ['INT', { default: 20, min: 1, max: 10000 }],
        cfg: ['FLOAT', { default: 8.0, min: 0.0, max: 100.0, step: 0.1, round: 0.01 }],
        sampler_name: [SAMPLER_NAMES],
        scheduler: [SCHEDULER_NAMES],
        positive: ['CONDITIONING'],
        negative: ['CONDITIONING'],
        latent_image: ['LATENT'],
        start_at_step: ['INT', { default: 0, min: 0, max: 10000 }],
        end_at_step: ['INT', { default: 10000, min: 0, max: 10000 }],
        return_with_leftover_noise: [['disable', 'enable']],
      },
    }),
    source: { file: 'comfy/samplers.py', line: 1145, fn: 'sample', code: 'samples = sampler.sample(noise, positive, negative, cfg=cfg, latent_image=latent_image, start_step=start_step, last_step=last_step, force_full_denoise=force_full_denoise, denoise_mask=noise_mask, sigmas=sigmas, callback=callback, disable_pbar=disable_pbar, seed=seed)' },
  }),
  v1({
    classType: 'VAEDecode',
    displayName: 'VAE Decode',
    description: 'Decodes latent images back into pixel space images.',
    pythonModule: 'nodes',
    category: 'latent',
    outputNode: false,
    returnTypes: ['IMAGE'],
    outputTooltips: ['The decoded image.'],
    inputTypes: () => ({
      required: {
        samples: ['LATENT', { tooltip: 'The latent to be decoded.' }],
        vae: ['VAE', { tooltip: 'The VAE model used for decoding the latent.' }],
      },
    }),
    source: { file: 'comfy/sd.py', line: 712, fn: 'decode', code: 'out = self.process_output(self.first_stage_model.decode(samples).to(self.output_device).float())' },
  }),
  v1({
    classType: 'VAEDecodeTiled',
    displayName: 'VAE Decode (Tiled)',
    description: '',
    pythonModule: 'nodes',
    category: '_for_testing',
    outputNode: false,
    returnTypes: ['IMAGE'],
    inputTypes: () => ({
      required: {
        samples: ['LATENT'],
        vae: ['VAE'],
        tile_size: ['INT', { default: 512, min: 64, max: 4096, step: 32 }],
        overlap: ['INT', { default: 64, min: 0, max: 4096, step: 32 }],
        temporal_size: ['INT', { default: 64, min: 8, max: 4096, step: 4, tooltip: 'Only used for video VAEs: Amount of frames to decode at a time.' }],
        temporal_overlap: ['INT', { default: 8, min: 4, max: 4096, step: 4, tooltip: 'Only used for video VAEs: Amount of frames to overlap.' }],
      },
    }),
    source: { file: 'comfy/sd.py', line: 760, fn: 'decode_tiled', code: 'output = self.decode_tiled_(samples, **args)' },
  }),
  v1({
    classType: 'SaveImage',
    displayName: 'Save Image',
    description: 'Saves the input images to your ComfyUI output directory.',
    pythonModule: 'nodes',
    category: 'image',
    outputNode: true,
    returnTypes: [],
    inputTypes: () => ({
      required: {
        images: ['IMAGE', { tooltip: 'The images to save.' }],
        filename_prefix: [
          'STRING',
          {
            default: 'ComfyUI',
            tooltip:
              'The prefix for the file to save. This may include formatting information such as %date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes.',
          },
        ],
      },
      hidden: { prompt: 'PROMPT', extra_pnginfo: 'EXTRA_PNGINFO' },
    }),
    source: SAVE_IMAGE_SOURCE,
  }),
  v1({
    classType: 'PreviewImage',
    displayName: 'Preview Image',
    // PreviewImage inherits SaveImage's DESCRIPTION class attribute.
    description: 'Saves the input images to your ComfyUI output directory.',
    pythonModule: 'nodes',
    category: 'image',
    outputNode: true,
    returnTypes: [],
    inputTypes: () => ({ required: { images: ['IMAGE'] }, hidden: { prompt: 'PROMPT', extra_pnginfo: 'EXTRA_PNGINFO' } }),
    source: SAVE_IMAGE_SOURCE,
  }),
  v1({
    classType: 'LoadImage',
    displayName: 'Load Image',
    description: '',
    pythonModule: 'nodes',
    category: 'image',
    outputNode: false,
    returnTypes: ['IMAGE', 'MASK'],
    inputTypes: (ctx) => ({ required: { image: [[...ctx.inputFiles()].filter(isImageFile).sort(), { image_upload: true }] } }),
    validateInputs: ['image'],
    customValidate: (inputs, ctx) => {
      const name = String(inputs.image);
      const plain = name.replace(/ \[(input|output|temp)\]$/, '');
      return ctx.inputFiles().includes(plain) ? true : `Invalid image file: ${name}`;
    },
    isChanged: (inputs, ctx) => ctx.inputFileHash(String(inputs.image)),
    source: { file: 'nodes.py', line: 1641, fn: 'load_image', code: 'img = node_helpers.pillow(Image.open, image_path)' },
  }),
  v1({
    classType: 'ImageScale',
    displayName: 'Upscale Image',
    description: '',
    pythonModule: 'nodes',
    category: 'image/upscaling',
    outputNode: false,
    returnTypes: ['IMAGE'],
    inputTypes: () => ({
      required: {
        image: ['IMAGE'],
        upscale_method: [UPSCALE_METHODS],
        width: ['INT', { default: 512, min: 0, max: MAX_RESOLUTION, step: 1 }],
        height: ['INT', { default: 512, min: 0, max: MAX_RESOLUTION, step: 1 }],
        crop: [['disabled', 'center']],
      },
    }),
    source: { file: 'comfy/utils.py', line: 893, fn: 'common_upscale', code: 'return torch.nn.functional.interpolate(s, size=(height, width), mode=upscale_method)' },
  }),
  v1({
    classType: 'ImageInvert',
    displayName: 'Invert Image',
    description: '',
    pythonModule: 'nodes',
    category: 'image',
    outputNode: false,
    returnTypes: ['IMAGE'],
    inputTypes: () => ({ required: { image: ['IMAGE'] } }),
    source: { file: 'nodes.py', line: 1839, fn: 'invert', code: 's = 1.0 - image' },
  }),
  v1({
    classType: 'EmptyImage',
    displayName: 'EmptyImage',
    description: '',
    pythonModule: 'nodes',
    category: 'image',
    outputNode: false,
    returnTypes: ['IMAGE'],
    inputTypes: () => ({
      required: {
        width: ['INT', { default: 512, min: 1, max: MAX_RESOLUTION, step: 1 }],
        height: ['INT', { default: 512, min: 1, max: MAX_RESOLUTION, step: 1 }],
        batch_size: ['INT', { default: 1, min: 1, max: 4096 }],
        color: ['INT', { default: 0, min: 0, max: 0xffffff, step: 1, display: 'color' }],
      },
    }),
    source: { file: 'nodes.py', line: 1877, fn: 'generate', code: 'r = torch.full([batch_size, height, width, 1], ((color >> 16) & 0xFF) / 0xFF)' },
  }),
  v1({
    classType: 'ImageToMask',
    displayName: 'Convert Image to Mask',
    description: '',
    pythonModule: 'comfy_extras.nodes_mask',
    category: 'mask',
    outputNode: false,
    returnTypes: ['MASK'],
    inputTypes: () => ({ required: { image: ['IMAGE'], channel: [['red', 'green', 'blue', 'alpha']] } }),
    source: { file: 'comfy_extras/nodes_mask.py', line: 137, fn: 'image_to_mask', code: 'mask = image[:, :, :, channels.index(channel)]' },
  }),
  v1({
    classType: 'MaskToImage',
    displayName: 'Convert Mask to Image',
    description: '',
    pythonModule: 'comfy_extras.nodes_mask',
    category: 'mask',
    outputNode: false,
    returnTypes: ['IMAGE'],
    inputTypes: () => ({ required: { mask: ['MASK'] } }),
    source: { file: 'comfy_extras/nodes_mask.py', line: 117, fn: 'mask_to_image', code: 'result = mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])).movedim(1, -1).expand(-1, -1, -1, 3)' },
  }),
  {
    classType: 'ImageBlur',
    displayName: null,
    description: '',
    pythonModule: 'comfy_extras.nodes_post_processing',
    category: 'image/postprocessing',
    outputNode: false,
    returnTypes: ['IMAGE'],
    outputTooltips: [null],
    v3: true,
    inputTypes: () => ({
      required: {
        image: ['IMAGE', {}],
        blur_radius: ['INT', { default: 1, min: 1, max: 31, step: 1 }],
        sigma: ['FLOAT', { default: 1.0, min: 0.1, max: 10.0, step: 0.1 }],
      },
    }),
    source: { file: 'comfy_extras/nodes_post_processing.py', line: 99, fn: 'execute', code: 'blurred = F.conv2d(padded_image, kernel, padding=kernel_size // 2, groups=channels)[:,:,blur_radius:-blur_radius, blur_radius:-blur_radius]' },
  },
  v1({
    classType: 'SaveImageWebsocket',
    displayName: 'SaveImageWebsocket',
    description: '',
    pythonModule: 'custom_nodes.websocket_image_save',
    category: 'api/image',
    outputNode: true,
    returnTypes: [],
    inputTypes: () => ({ required: { images: ['IMAGE'] } }),
    isChanged: 'always',
    source: { file: 'custom_nodes/websocket_image_save.py', line: 31, fn: 'save_images', code: 'pbar.update_absolute(step, images.shape[0], ("PNG", img, None))' },
  }),
];

/** Every node type the simulator implements, by class_type. */
export const NODE_SPECS: ReadonlyMap<string, NodeSpec> = new Map(SPECS.map((s) => [s.classType, s]));

/** The `/object_info` entry of one node type, in ComfyUI's V1 layout and key order. */
export function nodeInfo(spec: NodeSpec, ctx: CatalogContext): Record<string, unknown> {
  const input = spec.inputTypes(ctx);
  const inputOrder: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(input)) inputOrder[k] = Object.keys(v as object);
  if (spec.v3) {
    // V3 nodes: hidden inputs follow required ones; output nodes get prompt/extra_pnginfo.
    return {
      input,
      input_order: inputOrder,
      output: spec.returnTypes,
      output_is_list: spec.returnTypes.map(() => false),
      output_name: spec.returnTypes,
      output_tooltips: spec.outputTooltips ?? spec.returnTypes.map(() => null),
      name: spec.classType,
      display_name: spec.displayName,
      description: spec.description,
      python_module: spec.pythonModule,
      category: spec.category,
      output_node: spec.outputNode,
      deprecated: false,
      experimental: false,
      api_node: false,
    };
  }
  const info: Record<string, unknown> = {
    input,
    input_order: inputOrder,
    output: spec.returnTypes,
    output_is_list: spec.returnTypes.map(() => false),
    output_name: spec.returnTypes,
    name: spec.classType,
    display_name: spec.displayName ?? spec.classType,
    description: spec.description,
    python_module: spec.pythonModule,
    category: spec.category,
    output_node: spec.outputNode,
  };
  if (spec.outputTooltips) info.output_tooltips = spec.outputTooltips;
  return info;
}

/** A node spec as the shared validator (comfy/validate.ts) sees it, over this server's files. */
export function validationSpec(spec: NodeSpec, ctx: CatalogContext): ValidationNodeSpec {
  const custom = spec.customValidate;
  return {
    outputNode: spec.outputNode,
    returnTypes: spec.returnTypes,
    inputTypes: () => spec.inputTypes(ctx),
    ...(spec.validateInputs ? { validateInputs: spec.validateInputs } : {}),
    ...(custom ? { customValidate: (inputs: Record<string, unknown>) => custom.call(spec, inputs, ctx) } : {}),
  };
}

/** The validation environment of a server with these node specs and files. */
export function validationEnv(spec: (classType: string) => NodeSpec | undefined, ctx: CatalogContext): ValidationEnv {
  return {
    spec: (c) => {
      const s = spec(c);
      return s ? validationSpec(s, ctx) : undefined;
    },
  };
}
