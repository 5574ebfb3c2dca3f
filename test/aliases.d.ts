// Express 4 is installed under the alias 'express4' so the suite runs against both majors.
declare module 'express4' {
  import express from 'express';
  export default express;
}

// Koa 2 is installed under the alias 'koa2' so the suite runs against both majors.
declare module 'koa2' {
  import Koa from 'koa';
  export default Koa;
}
