//! The Nature CNN's convolutions on the CPU: im2col plus one `gemm` product per sample,
//! forward and backward (the learner-speed issue's "convolution as im2col/col2im plus a
//! matmul, as a custom op with a multi-threaded CPU kernel").
//!
//! For one sample with `C` input channels, an `O x C x kh x kw` kernel `K`, a bias `b` and
//! `P = OH * OW` output positions, `cols` is the `(P, C * kh * kw)` matrix of input patches,
//! and the op is the whole layer, convolution, bias and ReLU:
//!
//! ```text
//! forward     y^T   (P, O)   = relu(cols (P, CKK) . K^T + b)
//! backward    dz    (O, P)   = dy * [y > 0]
//!             db    (O,)     = sum over samples and positions of dz
//!             dK    (O, CKK) = sum_b dz_b (O, P) . cols_b          one product over B * P
//!             dcols (P, CKK) = dz^T (P, O) . K, then col2im (scatter-add into x's shape)
//! ```
//!
//! One op instead of three (convolution, broadcast bias, ReLU) also spares candle's
//! backward pass two graph nodes per layer, each a fresh zero gradient plus an add over
//! the whole activation.
//!
//! candle 0.11's own CPU convolution computes the input gradient as a direct
//! `conv_transpose2d` (a dot product per output pixel and kernel tap) and the kernel
//! gradient as a convolution with the output gradient as its kernel; both are several
//! times slower than these products. Each product covers the whole batch (`B * P` rows or
//! columns: large enough for gemm's multi-threaded kernels to run near peak), and the
//! per-sample passes (im2col, col2im, reordering) run one sample per rayon task.
//!
//! Used for f32 on the CPU with padding 0, dilation 1 and one group (the Nature CNN);
//! everything else (other dtypes, CUDA) goes through candle's `Conv2d`, so the CUDA build
//! is unaffected.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor};
use candle_nn::{Conv2d, Module};

use rayon::prelude::*;

use crate::matmul::{matmul_into, Mat};
use crate::slices::{contiguous, f32_data};

/// What a convolution's input is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConvInput {
    /// `u8` pixels, scaled to `[0, 1]` (times 1/255) as the patches are gathered, so the
    /// scaled image is never written; nobody needs its gradient.
    Pixels,
    /// Floats whose gradient nobody needs (an observation already scaled).
    Data,
    /// Floats whose gradient the backward pass computes (a hidden layer's features).
    Features,
}

/// `relu(conv.forward(x))`: one fused im2col kernel (the private `Im2colConvRelu`) on the
/// CPU in f32 where the configuration allows it, candle's ops otherwise.
pub fn conv2d_relu(x: &Tensor, conv: &Conv2d, input: ConvInput) -> candle_core::Result<Tensor> {
    let config = conv.config();
    let weight = conv.weight();
    let supported = x.device().is_cpu()
        && weight.dtype() == DType::F32
        && x.dtype() == if input == ConvInput::Pixels { DType::U8 } else { DType::F32 }
        && config.padding == 0
        && config.dilation == 1
        && config.groups == 1;
    match conv.bias() {
        Some(bias) if supported => x.contiguous()?.apply_op3(
            &weight.contiguous()?,
            &bias.contiguous()?,
            Im2colConvRelu { stride: config.stride, input },
        ),
        _ if input == ConvInput::Pixels => {
            conv.forward(&(x.to_dtype(weight.dtype())? * PIXEL_SCALE)?)?.relu()
        }
        _ => conv.forward(x)?.relu(),
    }
}

/// u8 pixels to `[0, 1]`.
const PIXEL_SCALE: f64 = 1.0 / 255.0;

/// The custom op behind [`conv2d_relu`]: `x (batch, C, H, W)`, `kernel (O, C, kh, kw)`,
/// `bias (O,)` to `(batch, O, OH, OW)`.
#[derive(Clone, Copy, Debug)]
struct Im2colConvRelu {
    stride: usize,
    input: ConvInput,
}

/// The op's input data: pixels or floats.
#[derive(Clone, Copy)]
enum Image<'a> {
    U8(&'a [u8]),
    F32(&'a [f32]),
}

/// The sizes of one convolution.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    batch: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    oh: usize,
    ow: usize,
}

impl Geometry {
    fn new(x: &[usize], k: &[usize], stride: usize) -> candle_core::Result<Self> {
        let (&[batch, c, h, w], &[o, kc, kh, kw]) = (x, k) else {
            candle_core::bail!("im2col-conv2d: expected 4-d input and kernel, got {x:?} and {k:?}")
        };
        if kc != c || kh > h || kw > w || stride == 0 {
            candle_core::bail!("im2col-conv2d: input {x:?} does not fit kernel {k:?} with stride {stride}")
        }
        Ok(Self { batch, c, h, w, o, kh, kw, stride, oh: (h - kh) / stride + 1, ow: (w - kw) / stride + 1 })
    }

    /// Output positions per sample.
    fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// Entries of one patch.
    fn ckk(&self) -> usize {
        self.c * self.kh * self.kw
    }

    fn x_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// The sample's patches `x (C, H, W)` into `cols (P, CKK)`, row `(y, x)`, column
    /// `(c, ky, kx)`, each value through `f`.
    fn im2col<T: Copy>(&self, x: &[T], cols: &mut [f32], f: impl Fn(T) -> f32) {
        for (pos, row) in cols.chunks_exact_mut(self.ckk()).enumerate() {
            let (y0, x0) = (pos / self.ow * self.stride, pos % self.ow * self.stride);
            for (ck, dst) in row.chunks_exact_mut(self.kw).enumerate() {
                let (ch, ky) = (ck / self.kh, ck % self.kh);
                let start = ch * self.h * self.w + (y0 + ky) * self.w + x0;
                for (d, &v) in dst.iter_mut().zip(&x[start..start + self.kw]) {
                    *d = f(v);
                }
            }
        }
    }

    /// The transpose of [`Geometry::im2col`]: adds each patch entry back onto its pixel.
    fn col2im_add(&self, cols: &[f32], dx: &mut [f32]) {
        for (pos, row) in cols.chunks_exact(self.ckk()).enumerate() {
            let (y0, x0) = (pos / self.ow * self.stride, pos % self.ow * self.stride);
            for (ck, src) in row.chunks_exact(self.kw).enumerate() {
                let (ch, ky) = (ck / self.kh, ck % self.kh);
                let start = ch * self.h * self.w + (y0 + ky) * self.w + x0;
                for (d, s) in dx[start..start + self.kw].iter_mut().zip(src) {
                    *d += s;
                }
            }
        }
    }
}

impl Im2colConvRelu {
    /// `cols (B * P, CKK)`: every sample's patches, one sample per task.
    fn im2col_all(&self, g: &Geometry, x: Image) -> Vec<f32> {
        let mut cols = vec![0f32; g.batch * g.p() * g.ckk()];
        let chunks = cols.par_chunks_mut(g.p() * g.ckk());
        match x {
            // The same f32 operations as candle's `to_dtype` then `* (1/255)`.
            Image::U8(x) => chunks
                .zip(x.par_chunks(g.x_len()))
                .for_each(|(cols, x)| g.im2col(x, cols, |v| f32::from(v) * PIXEL_SCALE as f32)),
            Image::F32(x) => {
                chunks.zip(x.par_chunks(g.x_len())).for_each(|(cols, x)| g.im2col(x, cols, |v| v))
            }
        }
        cols
    }

    /// `y (batch, O, P)` for `x (batch, C, H, W)`, `k (O, CKK)` and `bias (O,)`: one product
    /// `cols . K^T (B * P, O)` for the whole batch (the tall orientation: gemm splits its
    /// many rows over the threads, and it packs the contiguous `cols` rows), then bias and
    /// ReLU while transposing each sample to `(O, P)`.
    fn forward(&self, g: &Geometry, x: Image, k: &[f32], bias: &[f32]) -> Vec<f32> {
        let (p, ckk, bp) = (g.p(), g.ckk(), g.batch * g.p());
        let cols = self.im2col_all(g, x);
        let mut z = vec![0f32; bp * g.o];
        matmul_into(&mut z, Mat::rows(&cols, ckk), Mat::rows(k, ckk).t());
        let mut y = vec![0f32; g.batch * g.o * p];
        y.par_chunks_mut(g.o * p).zip(z.par_chunks(p * g.o)).for_each(|(y, z)| {
            for (pos, z) in z.chunks_exact(g.o).enumerate() {
                for (o, (&z, &bias)) in z.iter().zip(bias).enumerate() {
                    y[o * p + pos] = (z + bias).max(0.0);
                }
            }
        });
        y
    }

    /// The gradients of `x` (if asked for), the kernel and the bias from the output's
    /// gradient `dy` and the output `y` itself (its zeros are the ReLU's cuts).
    fn backward(&self, g: &Geometry, x: Image, k: &[f32], y: &[f32], dy: &[f32]) -> Grads {
        let (p, ckk, bp) = (g.p(), g.ckk(), g.batch * g.p());
        // dz = dy * [y > 0], laid out (O, B * P) so that sums over samples are the
        // products' own.
        let mut dz_t = vec![0f32; g.o * bp];
        dz_t.par_chunks_mut(bp).enumerate().for_each(|(o, row)| {
            for (b, dst) in row.chunks_exact_mut(p).enumerate() {
                let at = (b * g.o + o) * p;
                for ((d, &y), &dy) in dst.iter_mut().zip(&y[at..at + p]).zip(&dy[at..at + p]) {
                    *d = if y > 0.0 { dy } else { 0.0 };
                }
            }
        });
        let cols = self.im2col_all(g, x);
        let mut dk = vec![0f32; g.o * ckk];
        matmul_into(&mut dk, Mat::rows(&dz_t, bp), Mat::rows(&cols, ckk));
        let db = dz_t.par_chunks(bp).map(|row| row.iter().sum()).collect();
        let dx = (self.input == ConvInput::Features).then(|| {
            let mut dcols = cols; // reused: same shape, (B P, CKK)
            matmul_into(&mut dcols, Mat::rows(&dz_t, bp).t(), Mat::rows(k, ckk));
            let mut dx = vec![0f32; g.batch * g.x_len()];
            dx.par_chunks_mut(g.x_len())
                .zip(dcols.par_chunks(p * ckk))
                .for_each(|(dx, dcols)| g.col2im_add(dcols, dx));
            dx
        });
        Grads { dx, dk, db }
    }
}

/// [`Im2colConvRelu::backward`]'s result.
struct Grads {
    dx: Option<Vec<f32>>,
    dk: Vec<f32>,
    db: Vec<f32>,
}

impl CustomOp3 for Im2colConvRelu {
    fn name(&self) -> &'static str {
        "im2col-conv2d-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = Geometry::new(l1.dims(), l2.dims(), self.stride)?;
        if l3.dims() != [g.o] {
            candle_core::bail!(
                "im2col-conv2d-relu: bias of shape {:?} for {} output channels",
                l3.dims(),
                g.o
            )
        }
        let x = match (s1, l1.contiguous_offsets()) {
            (CpuStorage::U8(v), Some((a, b))) => Image::U8(&v[a..b]),
            _ => Image::F32(contiguous::<f32>(s1, l1, self.name())?),
        };
        let y = self.forward(
            &g,
            x,
            contiguous::<f32>(s2, l2, self.name())?,
            contiguous::<f32>(s3, l3, self.name())?,
        );
        Ok((CpuStorage::F32(y), Shape::from((g.batch, g.o, g.oh, g.ow))))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        kernel: &Tensor,
        bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = Geometry::new(arg.dims(), kernel.dims(), self.stride)?;
        let (pixels, floats) = match arg.dtype() {
            DType::U8 => (arg.flatten_all()?.to_vec1::<u8>()?, vec![]),
            _ => (vec![], f32_data(arg)?),
        };
        let x = if arg.dtype() == DType::U8 { Image::U8(&pixels) } else { Image::F32(&floats) };
        let grads = self.backward(&g, x, &f32_data(kernel)?, &f32_data(res)?, &f32_data(grad)?);
        let dx = grads.dx.map(|dx| Tensor::from_vec(dx, arg.shape(), arg.device())).transpose()?;
        Ok((
            dx,
            Some(Tensor::from_vec(grads.dk, kernel.shape(), kernel.device())?),
            Some(Tensor::from_vec(grads.db, bias.shape(), bias.device())?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;
    use crate::testing::rel;

    /// Values and all three gradients of [`conv2d_relu`] against candle's `Conv2d` and
    /// ReLU, for the Nature
    /// CNN's three shapes (at a smaller batch), a batch smaller than the thread count, and
    /// a non-square input.
    #[test]
    fn matches_candle_conv_values_and_gradients() {
        let dev = Device::Cpu;
        let cases = [
            // (batch, C, H, W, O, k, stride)
            (3, 4, 84, 84, 32, 8, 4),
            (5, 32, 20, 20, 64, 4, 2),
            (4, 64, 9, 9, 64, 3, 1),
            (1, 3, 11, 7, 5, 3, 2),
        ];
        for (b, c, h, w, o, k, stride) in cases {
            let x = Var::rand(-1f32, 1., (b, c, h, w), &dev).unwrap();
            let weight = Var::rand(-0.5f32, 0.5, (o, c, k, k), &dev).unwrap();
            let bias = Var::rand(-0.5f32, 0.5, o, &dev).unwrap();
            let config = candle_nn::Conv2dConfig { stride, ..Default::default() };
            let conv = Conv2d::new(weight.as_tensor().clone(), Some(bias.as_tensor().clone()), config);
            let fast = conv2d_relu(x.as_tensor(), &conv, ConvInput::Features).unwrap();
            let slow = conv.forward(x.as_tensor()).unwrap().relu().unwrap();
            let zeros = slow.eq(0f32).unwrap().to_dtype(DType::F32).unwrap().mean_all().unwrap();
            assert!(zeros.to_scalar::<f32>().unwrap() > 0.1, "the ReLU must cut some outputs");
            assert_eq!(fast.dims(), slow.dims());
            assert!(rel(&fast, &slow) <= 1e-5, "{:?} forward: {}", x.dims(), rel(&fast, &slow));
            // A loss weighing every output differently, so every gradient entry matters.
            let mix = Tensor::rand(-1f32, 1., fast.dims(), &dev).unwrap();
            let loss = |y: Tensor| (y * &mix).unwrap().sum_all().unwrap().backward().unwrap();
            let (gf, gs) = (loss(fast), loss(slow));
            for (name, var) in [("input", &x), ("kernel", &weight), ("bias", &bias)] {
                let err = rel(gf.get(var).unwrap(), gs.get(var).unwrap());
                assert!(err <= 1e-5, "{:?} {name} gradient: {err}", x.dims());
            }
        }
    }

    #[test]
    fn no_input_gradient_when_not_asked() {
        let dev = Device::Cpu;
        let x = Var::rand(-1f32, 1., (2, 4, 36, 36), &dev).unwrap();
        let weight = Var::rand(-0.5f32, 0.5, (8, 4, 8, 8), &dev).unwrap();
        let bias = Var::zeros(8, DType::F32, &dev).unwrap();
        let config = candle_nn::Conv2dConfig { stride: 4, ..Default::default() };
        let conv = Conv2d::new(weight.as_tensor().clone(), Some(bias.as_tensor().clone()), config);
        let grads = conv2d_relu(x.as_tensor(), &conv, ConvInput::Data)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(grads.get(&x).is_none() && grads.get(&weight).is_some());
    }

    #[test]
    fn rejects_mismatched_shapes() {
        assert!(Geometry::new(&[1, 3, 8, 8], &[4, 2, 3, 3], 1).is_err());
        assert!(Geometry::new(&[1, 3, 2, 8], &[4, 3, 3, 3], 1).is_err());
        let g = Geometry::new(&[2, 3, 9, 7], &[4, 3, 3, 3], 2).unwrap();
        assert_eq!((g.oh, g.ow, g.p(), g.ckk()), (4, 3, 12, 27));
    }
}
